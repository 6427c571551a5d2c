"""``facerobust gate-photo-attack URL``: chip-space vs photo-space impersonation, measured
through a running gate (white-box: the attacker has the gate's model, ``--model``), on the
impostor pairs of any dataset layout.

Writes ``--out DIR/results.json`` (kind ``gate-photo``) with, per method (chip / photo /
photo+eot), budget and upload format, the gate's acceptance rate and the attacker's in-memory
success (n, 95% CI), and ``DIR/report.html``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from facerobust.attacks import parse_epsilons
from facerobust.cli.common import (
    add_data_arguments,
    add_gate_client_arguments,
    add_out_argument,
    data_source,
    gate_access,
    print_gate_study,
    run_output,
)
from facerobust.eval.results_file import read_document
from facerobust.eval.results_gate import PhotoStudyResults
from facerobust.eval.study_run import run_study, source_identity
from facerobust.service.photo_study import PhotoStudyOptions, describe, run_photo_study


def configure(parser: argparse.ArgumentParser) -> None:

    add_gate_client_arguments(parser)
    parser.add_argument("--model", default="dlib-resnet",
                        help="the model the attacker crafts on (the gate's, for white-box)")
    parser.add_argument("--eps", default="2/255,4/255,8/255", help="Linf budgets")
    parser.add_argument("--n", type=int, default=20, help="impostor pairs")
    parser.add_argument("--steps", type=int, default=10, help="PGD steps")
    parser.add_argument("--eot", type=int, default=4, help="EOT draws of the photo+eot method")
    parser.add_argument("--jpeg", type=int, default=90, help="JPEG quality inside EOT (0 = off)")
    parser.add_argument("--formats", default="png,jpeg:90",
                        help="how adversarial photos are uploaded: png and/or jpeg:Q")
    add_data_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    add_out_argument(parser)
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:

    gate = gate_access(args)
    options = PhotoStudyOptions(
        model_name=args.model, epsilons=tuple(parse_epsilons(args.eps)), n=args.n,
        steps=args.steps, eot=args.eot, jpeg=args.jpeg,
        formats=tuple(f for f in args.formats.split(",") if f), seed=args.seed,
        progress=not args.no_progress)
    out = run_output(args.out, force=args.force)
    source = data_source(args)
    settings = {"gate": args.url, "data": source_identity(source),
                "options": replace(options, progress=False)}

    def compute() -> PhotoStudyResults:
        done = run_photo_study(gate, options, source=source, out=out.results)
        return PhotoStudyResults.from_dict(read_document(done), where=str(done))

    res = run_study(out, PhotoStudyResults, settings, compute, force=args.force)
    return print_gate_study(describe(res.result), res.results)
