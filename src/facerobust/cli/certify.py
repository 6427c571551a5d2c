"""``facerobust certify``: randomized smoothing (Cohen et al. 2019) of a face model's
decisions, as a one-unit audit. Verification: certified genuine accepts and impostor rejects
(an impostor reject certified at radius r: no chip change of L2 norm below r gets that
impostor accepted by the smoothed system) against the L2 radius, per noise level; the
adaptive EOT-PGD attack runs on every certified probe within its radius and its flips are
reported (must be 0). Writes ``results.json``, ``report.html`` and ``config.toml``."""

from __future__ import annotations

import argparse
from pathlib import Path

from facerobust.cli.audit import print_outcome
from facerobust.cli.common import add_run_arguments, command_run
from facerobust.data.resolve import default_dataset
from facerobust.eval.certify_config import CERTIFY_GOALS, parse_certify
from facerobust.eval.commands import CertifyCommand, run_certify


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated numbers, got {text!r}") from None


def configure(parser: argparse.ArgumentParser) -> None:

    parser.add_argument("--model", default="dlib-resnet", help="registered model name (victim)")
    parser.add_argument("--dataset", default=default_dataset(),
                        help="dataset name (default: lfw when an LFW copy is found, else the "
                             "embedded lfw-demo)")
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset folder or a folder containing it "
                        "(default: $FACEROBUST_DATA, then the cache)")
    parser.add_argument("--weights", default="", metavar="PATH",
                        help="fine-tuned weights of --model (a state dict, e.g. model.pt of "
                             "`facerobust adv-train --augment noise=0.25 ...`)")
    parser.add_argument("--goal", default="verification", choices=CERTIFY_GOALS)
    parser.add_argument("--sigma", default="0.12,0.25,0.5",
                        help="comma-separated noise levels (std of the Gaussian on [0, 1] chips)")
    parser.add_argument("--n0", type=int, default=100, help="selection draws per probe")
    parser.add_argument("--n", type=int, default=1000, help="estimation draws per probe")
    parser.add_argument("--alpha", type=float, default=0.001,
                        help="error level: each certificate holds with probability 1 - alpha")
    parser.add_argument("--samples", type=int, default=20,
                        help="probes per class (verification: genuine and impostor pairs each)")
    parser.add_argument("--radii", default="0,0.25,0.5,1.0",
                        help="comma-separated L2 radii of the certified-rate table")
    parser.add_argument("--attack-steps", type=int, default=20,
                        help="EOT-PGD steps on each certified probe (0: no attack)")
    parser.add_argument("--attack-eot", type=int, default=16, help="noise draws per step")
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:

    table = {"sigma": _floats(args.sigma), "n0": args.n0, "n": args.n, "alpha": args.alpha,
             "goal": args.goal, "samples": args.samples, "radii": _floats(args.radii),
             "attack_steps": args.attack_steps, "attack_eot": args.attack_eot}
    command = CertifyCommand(parse_certify(table, "certify"), weights=args.weights)
    print_outcome(run_certify(command, command_run(args)))
    return 0
