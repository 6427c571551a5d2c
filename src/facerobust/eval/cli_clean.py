"""``facerobust eval-clean``: clean LFW verification accuracy of one model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="dlib-resnet", help="registered model name")
    parser.add_argument("--dataset", default="lfw",
                        help="dataset name: lfw (fetched copy or lfw-gray) or lfw-gray")
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset folder, or a folder containing it "
                        "(default: $FACEROBUST_DATA, then the cache)")
    parser.add_argument("--pairs-file", default="pairs.txt",
                        help="protocol file: pairs.txt (10 folds), pairsDevTest.txt, ...")
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


def format_table(res: dict) -> str:
    rows = [
        ("model", res["model"]),
        ("dataset", f"{res['dataset']} ({res['pairs_file']})"),
        ("pairs evaluated", f"{res['n_pairs']} ({res['n_pairs_excluded']} excluded, "
                            f"{len(res['skipped'])} images skipped)"),
        (f"accuracy ({res['protocol']})", f"{100 * res['accuracy']:.2f}% "
                                          f"+/- {100 * res['accuracy_std']:.2f}"),
        ("ROC AUC", f"{res['auc']:.4f}"),
        ("EER", f"{100 * res['eer']:.2f}%"),
        (f"TAR @ FAR={res['far']:g}", f"{100 * res['tar_at_far']:.2f}% "
                                      f"(threshold {res['threshold']:.4f})"),
        ("best threshold", f"{res['best_threshold']:.4f}"),
        (f"accuracy @ model threshold {res['model_threshold']:g}",
         f"{100 * res['accuracy_at_model_threshold']:.2f}%"),
        ("time", f"{res['seconds']:.1f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def run(args: argparse.Namespace) -> int:
    from facerobust import models
    from facerobust.data import resolve_dataset
    from facerobust.eval.clean import evaluate_clean

    root = resolve_dataset(args.dataset, args.data)
    model = models.load(args.model, device=args.device)
    res = evaluate_clean(model, root, batch_size=args.batch_size,
                         progress=not args.no_progress, limit_pairs=args.limit_pairs,
                         pairs_file=args.pairs_file, far=args.far, device=args.device)
    doc = res.to_dict()
    doc["model"] = args.model
    out = args.out or Path(f"eval-clean-{args.model}-{args.dataset}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    if args.json:
        print(json.dumps(doc))
    else:
        print(format_table(doc))
        print(f"saved {out}", file=sys.stderr)
    return 0
