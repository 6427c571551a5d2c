"""``facerobust defensive-distill``: a plain and a defensively distilled identification head
on one face model (any dataset layout), attacked by naive PGD, PGD on the logits and CW-L2 on
the logits. Writes ``--out DIR/results.json`` (kind ``defensive-distill``) and
``DIR/report.html``; the old ``--out FILE.json`` (page in ``FILE.html``) still works."""

from __future__ import annotations

import argparse
import sys

from facerobust.attacks import parse_epsilons
from facerobust.cli.common import add_data_arguments, add_out_argument, data_source, run_output
from facerobust.eval.defensive import (
    DefensiveOptions,
    defensive_distillation_study,
    format_defensive,
)
from facerobust.eval.results_study import DefensiveResult
from facerobust.eval.study_run import run_study, source_identity
from facerobust.report import render_report


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="dlib-resnet", help="embedder (zoo name or student)")
    add_data_arguments(parser)
    parser.add_argument("--identities", type=int, default=20)
    parser.add_argument("--images-per-identity", type=int, default=10)
    parser.add_argument("--gallery-per-identity", type=int, default=5)
    parser.add_argument("--temperature", type=float, default=100.0)
    parser.add_argument("--eps", default="2/255", help="Linf budget of both PGD attacks")
    parser.add_argument("--steps", type=int, default=10, help="PGD steps")
    parser.add_argument("--cw-l2", type=float, default=1.0, help="L2 budget for CW success")
    parser.add_argument("--cw-steps", type=int, default=30)
    parser.add_argument("--probes", type=int, default=40, help="probe images attacked")
    parser.add_argument("--head-epochs", type=int, default=1000,
                        help="full-batch epochs of each distillation head (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    add_out_argument(parser, old="--out FILE.json (page in FILE.html)")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:

    (eps,) = parse_epsilons(args.eps)
    for key in ("identities", "steps", "cw_steps", "probes", "head_epochs"):
        if getattr(args, key) < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 1")
    if args.temperature < 1 or args.cw_l2 <= 0:
        raise ValueError("--temperature must be >= 1 and --cw-l2 > 0")
    out = run_output(args.out, force=args.force, legacy_suffix=".json",
                     new_form="which writes DIR/results.json and DIR/report.html")
    options = DefensiveOptions(
        identities=args.identities, images=args.images_per_identity,
        gallery=args.gallery_per_identity, temperature=args.temperature, eps=eps,
        steps=args.steps, cw_l2=args.cw_l2, cw_steps=args.cw_steps, probes=args.probes,
        head_epochs=args.head_epochs, seed=args.seed)
    source = data_source(args)
    settings = {"model": args.model, "data": source_identity(source), "options": options}
    report = run_study(out, DefensiveResult, settings, lambda: defensive_distillation_study(
        model=args.model, root=source, options=options, progress=not args.no_progress),
        force=args.force).result
    html = render_report(out.results)
    print(format_defensive(report))
    print(f"saved {out.results} and {html}", file=sys.stderr)
    return 0
