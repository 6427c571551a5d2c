"""``facerobust gate-photo-attack URL``: chip-space vs photo-space impersonation, measured
through a running gate (white-box: the attacker has the gate's model, ``--model``).

Writes ``--out/results.json`` with, per method (chip / photo / photo+eot), budget and upload
format, the gate's acceptance rate and the attacker's in-memory success (n, 95% CI).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facerobust.attacks import parse_epsilons
from facerobust.cli.common import add_gate_client_arguments
from facerobust.report import load_result, render_report
from facerobust.service.photo_study import describe, run_photo_study


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
    parser.add_argument("--dataset", default="lfw-demo")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:

    if not args.key or not args.admin_key:
        raise ValueError("--key and --admin-key (or $FACEROBUST_GATE_KEY / "
                         "$FACEROBUST_GATE_ADMIN_KEY) are required")
    if args.n < 1 or args.steps < 1 or args.eot < 1:
        raise ValueError("--n, --steps and --eot must be >= 1")
    path = run_photo_study(
        args.url, key=args.key, admin_key=args.admin_key, model_name=args.model,
        epsilons=parse_epsilons(args.eps), n=args.n, out=args.out, steps=args.steps,
        eot=args.eot, jpeg=args.jpeg, formats=tuple(f for f in args.formats.split(",") if f),
        dataset=args.dataset, data=args.data, seed=args.seed, progress=not args.no_progress)

    print("\n".join(describe(load_result(path).result)))
    print(f"report:  {render_report(path)}")
    print(f"results: {path}")
    return 0
