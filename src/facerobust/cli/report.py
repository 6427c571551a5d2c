"""``facerobust report RESULTS.json``: re-render report.html from a results file."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=Path, help="results.json written by audit/demo")
    parser.add_argument("--out", type=Path, default=None,
                        help="HTML file to write (default: report.html beside results.json)")


def run(args: argparse.Namespace) -> int:
    from facerobust.report import render_report

    print(render_report(args.results, args.out))
    return 0
