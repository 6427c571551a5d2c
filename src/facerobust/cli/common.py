"""Arguments shared by the one-unit audit commands (``attack``, ``defend``)."""

from __future__ import annotations

import argparse
from pathlib import Path


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
