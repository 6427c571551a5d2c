"""Arguments shared by the one-unit audit commands (``attack``, ``defend``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from facerobust.eval.commands import CommandRun


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--head``, ``--batch-size``, ``--seed``, ``--out`` and ``--no-progress``."""
    parser.add_argument("--head", default="", metavar="PATH",
                        help="identification head saved by `facerobust train-head` (its "
                             "identities and split are used)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder (results.json, report.html, config.toml); "
                             "re-running into it resumes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_force_argument(parser)


def command_run(args: argparse.Namespace) -> CommandRun:
    """The shared run settings of a one-unit audit command (``--model``, ``--dataset``,
    ``--data`` and the arguments of :func:`add_run_arguments`)."""
    return CommandRun(model=args.model, out=args.out, dataset=args.dataset, data=args.data,
                      head=args.head, batch_size=args.batch_size, seed=args.seed,
                      progress=not args.no_progress, force=args.force)


def add_force_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="write into --out even when it holds a results.json that is not "
                             "from a facerobust run")


def print_skipped(skipped: list[dict[str, str]], shown: int = 10) -> None:
    """The first ``shown`` skipped files, under their own names, and the count (stderr)."""
    if not skipped:
        return
    print(f"{len(skipped)} image(s) skipped:", file=sys.stderr)
    for item in skipped[:shown]:
        print(f"  {item['path']}: {item['reason']}", file=sys.stderr)
    if len(skipped) > shown:
        print(f"  ... and {len(skipped) - shown} more (all listed in the JSON)", file=sys.stderr)


def add_gate_client_arguments(parser: argparse.ArgumentParser) -> None:
    """The gate URL, the client key and the admin key (both default to the environment)."""

    parser.add_argument("url", help="gate base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--key", default=os.environ.get("FACEROBUST_GATE_KEY", ""),
                        help="client API key (default $FACEROBUST_GATE_KEY)")
    parser.add_argument("--admin-key", default=os.environ.get("FACEROBUST_GATE_ADMIN_KEY", ""),
                        help="admin key to enroll the victims (default "
                             "$FACEROBUST_GATE_ADMIN_KEY)")
