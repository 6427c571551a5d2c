"""``facerobust defend``: judge defenses under naive, direct, adaptive (BPDA/EOT) and optional
black-box attacks, as a one-unit audit (``results.json`` + ``report.html`` in ``--out``).

Example::

    facerobust defend --model dlib-resnet --dataset lfw-gray --defense jpeg:q=75 \\
        --defense bitdepth:bits=4 --defense "jpeg:q=75+median:k=3" --attack pgd \\
        --eps 2/255,4/255,8/255 --goal dodging --n 32 --out runs/defend
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facerobust.attacks import parse_epsilons
from facerobust.attacks.registry import attack_names
from facerobust.attacks.threat import LINF, threat_names
from facerobust.cli.audit import print_outcome
from facerobust.cli.common import add_run_arguments, command_run
from facerobust.data.resolve import default_dataset
from facerobust.eval.commands import DefendCommand, run_defend
from facerobust.eval.tasks import GOALS


def configure(parser: argparse.ArgumentParser) -> None:

    parser.add_argument("--model", default="dlib-resnet",
                        help="zoo model name, model spec (*.toml) or added model")
    parser.add_argument("--dataset", default=default_dataset(),
                        help="dataset name (default: lfw when an LFW copy is found, else the "
                             "embedded lfw-demo)")
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset folder (default: looked up under $FACEROBUST_DATA)")
    parser.add_argument("--defense", action="append", required=True, metavar="SPEC",
                        help="defense spec 'name:k=v,...' or a composition 'a:...+b:...', "
                             "repeat for several. Defenses: none, jpeg:q=75, bitdepth:bits=4, "
                             "median:k=3, gaussian:sigma=1, tvm:weight=0.03,keep=0.5,steps=10, "
                             "rp:scale=0.1")
    parser.add_argument("--attack", default="pgd", choices=attack_names("white-box"),
                        help="white-box attack used for the naive, direct and adaptive runs")
    parser.add_argument("--steps", type=int, default=None, help="iterations (attack default)")
    parser.add_argument("--norm", default=LINF.name, choices=threat_names())
    parser.add_argument("--eps", default="2/255,4/255,8/255", help="comma-separated budgets")
    parser.add_argument("--goal", default="dodging", choices=GOALS,
                        help="verification (dodging, impersonation) or identification "
                             "(untargeted, targeted) goal")
    parser.add_argument("--n", type=int, default=32, help="samples attacked")
    parser.add_argument("--eot", type=int, default=None,
                        help="EOT samples of the adaptive attack for randomised defenses "
                             "(default 8; deterministic defenses always use 1)")
    parser.add_argument("--blackbox", type=int, default=0, metavar="QUERIES",
                        help="also run SquareAttack with this many queries per sample (0 = off)")
    parser.add_argument("--no-direct", action="store_true",
                        help="skip the direct (autograd-through-the-defense) attack")
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:

    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    command = DefendCommand(
        specs=tuple(args.defense), attack=args.attack, norm=args.norm,
        epsilons=tuple(parse_epsilons(args.eps)), goal=args.goal, n=args.n, steps=args.steps,
        eot=args.eot, direct=not args.no_direct, blackbox_queries=args.blackbox)
    path = run_defend(command, command_run(args))
    print_outcome(path)
    return 0
