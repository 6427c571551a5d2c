"""``facerobust attack``: one attack with one goal on a face model, as a one-unit audit.

Verification goals attack pairs the model decides correctly: ``dodging`` genuine pairs it
accepts (the probe must stop matching), ``impersonation`` impostor pairs it rejects (the probe
must match the other person). ``untargeted``/``targeted`` attack the closed-set identification
head (trained on the audit's identification split, or ``--head`` from ``train-head``).
Writes ``results.json``, ``report.html``, ``config.toml`` and example grids into ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facerobust.attacks import parse_epsilons
from facerobust.attacks.registry import ATTACKS
from facerobust.attacks.threat import LINF, threat_names
from facerobust.cli.audit import print_outcome
from facerobust.cli.common import add_run_arguments, command_run
from facerobust.data.resolve import default_dataset
from facerobust.eval.commands import AttackCommand, run_attack
from facerobust.eval.tasks import GOALS


def configure(parser: argparse.ArgumentParser) -> None:

    parser.add_argument("--model", default="dlib-resnet",
                        help="zoo model name, model spec (*.toml) or added model (the victim)")
    parser.add_argument("--others", default="", metavar="NAMES",
                        help="comma-separated models the adversarials are transferred to")
    parser.add_argument("--surrogates", default="", metavar="NAMES",
                        help="craft on this comma-separated ensemble of models (e.g. "
                             "dlib-resnet,faceres) and measure transfer to the rest")
    parser.add_argument("--dataset", default=default_dataset(),
                        help="dataset name (default: lfw when an LFW copy is found, else the "
                             "embedded lfw-demo)")
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset folder or a folder containing it "
                        "(default: $FACEROBUST_DATA, then the cache)")
    parser.add_argument("--attack", default="pgd", choices=list(ATTACKS))
    parser.add_argument("--norm", default=LINF.name, choices=threat_names())
    parser.add_argument("--eps", default="1/255,2/255,4/255",
                        help="comma-separated budgets, e.g. 1/255,2/255 (Linf) or 0.5,1 (L2)")
    parser.add_argument("--goal", default="dodging", choices=GOALS)
    parser.add_argument("--n", type=int, default=200, help="number of probes to attack")
    parser.add_argument("--steps", type=int, default=None,
                        help="iterations (default: the attack's, e.g. pgd 10, cw 100)")
    parser.add_argument("--queries", type=int, default=None,
                        help="query budget of square / hsj (default 1000)")
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:

    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    command = AttackCommand(
        attack=args.attack, norm=args.norm, epsilons=tuple(parse_epsilons(args.eps)),
        goal=args.goal, n=args.n, steps=args.steps, queries=args.queries,
        others=tuple(m for m in args.others.split(",") if m),
        surrogates=tuple(m for m in args.surrogates.split(",") if m))
    path = run_attack(command, command_run(args))
    print_outcome(path)
    return 0
