"""Thin command-line front end: each subcommand is a module of this package exposing
``configure(parser)`` (arguments only) and ``run(args) -> int`` (calls one library function)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from facerobust import __version__
from facerobust.allocator import keep_freed_memory

# (subcommand, module, one-line help). Modules must import heavy libraries inside ``run``.
COMMANDS: list[tuple[str, str, str]] = [
    ("info", "info", "versions, threads, models, datasets and cache locations"),
    ("audit", "audit", "run or resume an audit from a TOML config"),
    ("demo", "demo", "run the built-in demo audit on LFW"),
    ("report", "report", "re-render the HTML page of results.json or a study JSON"),
    ("attack", "attack", "attack a face model (a one-unit audit: results.json + report)"),
    ("certify", "certify", "certified decisions: randomized smoothing of a model's "
     "verification / identification, certified L2 radius per probe (one-unit audit)"),
    ("defend", "defend", "judge defenses under naive, direct and adaptive attacks (one-unit "
     "audit)"),
    ("detect", "detect", "adversarial-input detectors: fit + judge them (also against adaptive "
     "attacks), or score photos with a saved one"),
    ("adv-train", "adv_train", "PGD adversarial fine-tuning, judged on held-out identities"),
    ("eval-clean", "eval_clean", "clean LFW verification accuracy of a model"),
    ("data", "data", "datasets: `data prepare DIR` aligns + caches photos, `data fetch lfw`"),
    ("models", "models", "model zoo: list cards, fetch weights, show a card"),
    ("serve", "serve", "run the access-control gate (HTTP) from a TOML config"),
    ("gate", "gate", "gate administration: `gate verify-log` checks the audit log's hash "
     "chain"),
    ("attack-gate", "attack_gate", "black-box attack on a running gate over HTTP (Square / "
     "HopSkipJump)"),
    ("physical-attack", "physical_attack", "printable accessories (eyeglasses, stickers, a "
     "mask) judged on held-out simulated captures by the face system's exact pipeline"),
    ("gate-photo-attack", "gate_photo", "chip-space vs photo-space adversarial photos, judged "
     "by a running gate"),
    ("cache", "cache", "verify the caches against their recorded hashes, or clear them"),
    ("train-head", "train_head", "train a closed-set identification head (usable everywhere "
     "with --head)"),
    ("compare", "compare", "face models side by side: accuracy, distances, FGSM error rates"),
    ("distill", "distill", "distil a small fast student from a teacher model (a zoo model)"),
    ("defensive-distill", "defensive_distill", "defensive distillation of an identification "
     "head vs naive PGD, PGD on logits and CW"),
]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only``, just that subcommand's module is imported and
    configured (the others are listed by name and help), so start-up stays fast."""
    parser = argparse.ArgumentParser(
        prog="facerobust",
        description="Audit how easily a face-recognition system is fooled by adversarial "
        "images, and how much each defense helps.",
    )
    parser.add_argument("--version", action="version", version=f"facerobust {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            module = importlib.import_module(f"facerobust.cli.{module_name}")
            module.configure(cmd)
            cmd.set_defaults(_run=module.run)
    return parser


def _command_of(argv: Sequence[str]) -> str:
    """The subcommand named on the command line ("" when none is)."""
    return next((a for a in argv if not a.startswith("-")), "")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=_command_of(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        if args.command != "serve":  # a batch job: reuse freed tensor memory (see allocator)
            keep_freed_memory()
        return int(args._run(args) or 0)
    except (ValueError, TypeError, OSError) as err:
        print(f"facerobust {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
