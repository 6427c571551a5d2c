"""``facerobust eval-clean``: clean verification accuracy of one model on any dataset layout.
Writes ``--out DIR/results.json`` (kind ``eval-clean``) and ``DIR/report.html``; the old
``--out FILE.json`` still works."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from facerobust import models
from facerobust.cli.common import (
    add_data_arguments,
    add_out_argument,
    data_source,
    print_skipped,
    run_output,
)
from facerobust.data.cfp import PROTOCOLS
from facerobust.data.chips import DETECTORS
from facerobust.data.resolve import dataset_protocol
from facerobust.eval.clean import CleanEvaluation, CleanOptions, evaluate_clean
from facerobust.eval.results_file import wrap
from facerobust.eval.results_study import CleanEvalResult
from facerobust.eval.study_run import run_study, source_identity
from facerobust.report import render_report


def configure(parser: argparse.ArgumentParser) -> None:

    parser.add_argument("--model", default="dlib-resnet",
                        help="zoo model name, model spec (*.toml) or added model")
    add_data_arguments(parser, listing=False)  # a listing file is found by the layout
    parser.add_argument("--pairs-file", default="pairs.txt",
                        help="protocol file: pairs.txt (10 folds), pairsDevTest.txt, ...; "
                             "datasets without one get a generated 10-fold protocol")
    parser.add_argument("--protocol", default=None, choices=PROTOCOLS,
                        help="CFP's official 10-fold protocol: ff (frontal-frontal, the "
                             "default on cfp) or fp (frontal-profile); CFP only")
    parser.add_argument("--held-out", action="store_true",
                        help="CFP only: judge only the pairs of CFP's held-out people (the 172 "
                             "also in LFW, whom no facerobust training uses): the fair figure "
                             "for dlib-student and dlib-resnet-hardened, trained on CFP")
    parser.add_argument("--detector", default="hog+cnn", choices=DETECTORS,
                        help="face detector (default: HOG, CNN when HOG finds none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of a generated protocol")
    parser.add_argument("--limit-pairs", type=int, default=None, metavar="N",
                        help="use N pairs spread over folds and classes (quick look)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--far", type=float, default=1e-3, help="FAR for TAR@FAR")
    parser.add_argument("--device", default=None, help="torch device (default: cpu)")
    add_out_argument(parser, required=False,
                     old="--out FILE.json; default: the folder eval-clean-<model>-<dataset>")
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

    label = Path(args.model).stem if args.model.endswith(".toml") else args.model
    named = dataset_protocol(args.dataset)
    if args.protocol and named and args.protocol != named:
        raise ValueError(f"--protocol {args.protocol} contradicts --dataset {args.dataset} "
                         f"(which means --protocol {named})")
    protocol = args.protocol or named
    where = args.dataset + (f"-{protocol}" if args.protocol else "") \
        + ("-held-out" if args.held_out else "")
    out = run_output(args.out or Path(f"eval-clean-{label}-{where}"),
                     force=args.force, legacy_suffix=".json",
                     new_form="which writes DIR/results.json and DIR/report.html")
    source = data_source(args)
    options = CleanOptions(limit_pairs=args.limit_pairs, pairs_file=args.pairs_file,
                           protocol=protocol, layout=args.layout,
                           detector=args.detector, far=args.far,
                           batch_size=args.batch_size, seed=args.seed,
                           held_out=args.held_out)
    settings = {"model": args.model, "data": source_identity(source), "options": options}

    def compute() -> CleanEvalResult:
        model = models.load(args.model, device=args.device)
        return CleanEvalResult(evaluate_clean(model, source.root(), options, name=args.model,
                                              progress=not args.no_progress))

    result = run_study(out, CleanEvalResult, settings, compute, force=args.force).result
    res = result.result
    html = render_report(out.results)
    if args.json:
        print(json.dumps(wrap(result)))
    else:
        print(format_table(res))
        print_skipped(res.skipped)
        print(f"saved {out.results} and {html}", file=sys.stderr)
    return 0

