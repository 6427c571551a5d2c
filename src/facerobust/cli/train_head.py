"""``facerobust train-head``: train a closed-set identification head on a zoo embedder, over
the same identification split the audit uses (any dataset layout); ``--head DIR/head.pt``
(attack, defend, audit) and ``[identification] head`` reuse it.

    facerobust train-head --model mobileface --dataset lfw-gray --identities 20 \\
        --images-per-identity 20 --gallery-per-identity 10 --min-images 20 --out runs/head

writes ``runs/head/head.pt``, ``runs/head/results.json`` (kind ``train-head``) and
``runs/head/report.html``; the old ``--out head.pt`` still works (report in ``head.json``).
"""

from __future__ import annotations

import argparse
import json
import sys

from facerobust.cli.common import (
    add_data_arguments,
    add_out_argument,
    data_source,
    print_skipped,
    run_output,
)
from facerobust.eval.config import IdentificationConfig
from facerobust.eval.identification import HeadOptions, head_report, train_identification_head
from facerobust.eval.results_study import HeadTrainingResult
from facerobust.eval.study_run import RunOutput, run_study, source_identity
from facerobust.report import render_report

HEAD = "head.pt"


def configure(parser: argparse.ArgumentParser) -> None:

    d = IdentificationConfig()
    parser.add_argument("--model", required=True, help="registered face model name")
    add_data_arguments(parser)
    parser.add_argument("--identities", type=int, default=d.identities,
                        help="at most this many people (seeded draw)")
    parser.add_argument("--images-per-identity", type=int, default=d.images_per_identity)
    parser.add_argument("--gallery-per-identity", type=int, default=d.gallery_per_identity,
                        help="enrolment images per person; the rest are probes")
    parser.add_argument("--min-images", type=int, default=d.min_images)
    parser.add_argument("--head", choices=["cosine", "linear"], default="cosine")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    add_out_argument(parser, old="--out FILE.pt (the head; its report in FILE.json)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:

    out = run_output(args.out, force=args.force, legacy_suffix=".pt",
                     new_form=f"which writes DIR/{HEAD} and DIR/results.json")
    head = out.results if out.legacy else out.file(HEAD)
    results = out.results.with_suffix(".json") if out.legacy else out.results
    options = HeadOptions(identities=args.identities, images=args.images_per_identity,
                          gallery=args.gallery_per_identity, min_images=args.min_images,
                          kind=args.head, epochs=args.epochs, seed=args.seed)
    source = data_source(args)
    settings = {"model": args.model, "data": source_identity(source), "options": options}
    result = run_study(
        RunOutput(out.folder, results, out.legacy), HeadTrainingResult, settings,
        lambda: train_identification_head(model=args.model, source=source, options=options,
                                          out=head, progress=not args.no_progress),
        force=args.force, files=(head,)).result
    report = head_report(result)
    print(json.dumps({k: v for k, v in report.items() if k != "skipped"}, indent=2))
    print_skipped(result.skipped)
    print(f"saved {head} and {results}, report {render_report(results)} (held-out top-1 "
          f"{result.probe_top1.rate:.4f})", file=sys.stderr)
    return 0
