"""``facerobust eval-clean``: clean LFW verification accuracy of one model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from facerobust import models
from facerobust.cli.common import print_skipped
from facerobust.data import resolve_dataset
from facerobust.data.chips import DETECTORS
from facerobust.data.sources import LAYOUTS
from facerobust.eval.clean import CleanOptions, evaluate_clean
from facerobust.eval.store import write_json_atomic

if TYPE_CHECKING:
    from facerobust.eval.clean import CleanEvaluation


def configure(parser: argparse.ArgumentParser) -> None:

    parser.add_argument("--model", default="dlib-resnet", help="registered model name")
    parser.add_argument("--dataset", default="lfw",
                        help="dataset name: lfw (fetched copy or lfw-gray) or lfw-gray")
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset folder, or a folder containing it "
                        "(default: $FACEROBUST_DATA, then the cache)")
    parser.add_argument("--pairs-file", default="pairs.txt",
                        help="protocol file: pairs.txt (10 folds), pairsDevTest.txt, ...; "
                             "datasets without one get a generated 10-fold protocol")
    parser.add_argument("--layout", default="auto", choices=LAYOUTS,
                        help="dataset layout (default: detected)")
    parser.add_argument("--detector", default="hog+cnn", choices=DETECTORS,
                        help="face detector (default: HOG, CNN when HOG finds none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of a generated protocol")
    parser.add_argument("--limit-pairs", type=int, default=None, metavar="N",
                        help="use N pairs spread over folds and classes (quick look)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--far", type=float, default=1e-3, help="FAR for TAR@FAR")
    parser.add_argument("--device", default=None, help="torch device (default: cpu)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON result file (default: eval-clean-<model>-<dataset>.json)")
    parser.add_argument("--json", action="store_true",
                        help="print exactly one JSON object on stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def format_table(res: CleanEvaluation) -> str:
    f = res.figures
    rows = [
        ("model", f.model),
        ("dataset", f"{res.dataset} ({res.layout} layout, pairs: {res.pairs_file})"),
        ("pairs evaluated", f"{f.n_pairs} ({res.n_pairs_excluded} excluded, "
                            f"{len(res.skipped)} images skipped)"),
        (f"accuracy ({f.protocol})", f"{100 * f.accuracy:.2f}% +/- {100 * f.accuracy_std:.2f} "
                                     f"over {f.n_folds} folds; pooled {f.correct.text()}"),
        ("ROC AUC", f"{f.auc:.4f}"),
        ("EER", f"{100 * f.eer:.2f}%"),
        (f"TAR @ FAR={f.far:g}", f"{f.tar_at_far.text()} (threshold {f.threshold_at_far:.4f})"),
        ("best threshold", f"{f.best_threshold:.4f}"),
        (f"correct @ model threshold {f.operating_threshold:g}",
         f.correct_at_operating_threshold.text()),
        ("time", f"{res.seconds:.1f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def run(args: argparse.Namespace) -> int:

    out = args.out or Path(f"eval-clean-{args.model}-{args.dataset}.json")
    check_output_file(out)
    root = resolve_dataset(args.dataset, args.data)
    model = models.load(args.model, device=args.device)
    options = CleanOptions(limit_pairs=args.limit_pairs, pairs_file=args.pairs_file,
                           layout=args.layout, detector=args.detector, far=args.far,
                           batch_size=args.batch_size, seed=args.seed)
    res = evaluate_clean(model, root, options, name=args.model, progress=not args.no_progress)
    doc = {**res.summary(), "skipped_files": res.skipped, "result": res.to_dict()}
    write_json_atomic(out, doc)
    if args.json:
        print(json.dumps(doc))
    else:
        print(format_table(res))

        print_skipped(res.skipped)
        print(f"saved {out}", file=sys.stderr)
    return 0


def check_output_file(path: Path) -> None:
    """Fail before any work when ``path`` cannot be written."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder; give a file name")
    if parent.exists() and not parent.is_dir():
        raise ValueError(f"--out {path}: {parent} is not a folder")

