"""``facerobust report FILE.json``: re-render the HTML page of a results file: an audit's
``results.json``, or a study file (``comparison.json``, adv-train's ``training.json``, a
student ``.card.json``, a ``defensive-distill`` result)."""

from __future__ import annotations

import argparse
from pathlib import Path

from facerobust.eval.versioned import read_json
from facerobust.report import render_report
from facerobust.report.study import render_study, study_kind


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=Path,
                        help="results.json (audit/attack/defend/demo), comparison.json, "
                             "training.json, a student .card.json or a defensive-distill JSON")
    parser.add_argument("--out", type=Path, default=None,
                        help="HTML file to write (default: report.html beside results.json, "
                             "comparison.json or training.json; FILE.html beside other files)")


def run(args: argparse.Namespace) -> int:

    if study_kind(read_json(args.results, "results file")) is not None:
        print(render_study(args.results, args.out))
    else:
        print(render_report(args.results, args.out))
    return 0
