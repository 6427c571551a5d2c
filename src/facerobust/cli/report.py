"""``facerobust report FILE.json``: re-render the HTML page of any result file facerobust
writes (every command's ``results.json``, whatever its ``kind``, and the older study files:
``comparison.json``, ``training.json``, a student ``.card.json``, a defensive-distill JSON);
``facerobust report --compare RUN_A RUN_B``: two runs side by side."""

from __future__ import annotations

import argparse
from pathlib import Path

from facerobust.report import render_report
from facerobust.report.compare import compare_runs


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=Path, nargs="?", default=None,
                        help="a results.json of any command (or an older comparison.json, "
                             "training.json, student .card.json or defensive-distill JSON)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("RUN_A", "RUN_B"),
                        default=None, help="compare two runs (result files or run folders): "
                                           "every shared rate, its difference and whether it "
                                           "is significant; writes compare.json/.csv/.html")
    parser.add_argument("--out", type=Path, default=None,
                        help="HTML file to write (default: report.html beside results.json, "
                             "comparison.json or training.json; FILE.html beside other files); "
                             "with --compare: the folder (default: RUN_B's folder/compare)")


def run(args: argparse.Namespace) -> int:

    if args.compare is not None:
        if args.results is not None:
            raise ValueError("give either a results file or --compare RUN_A RUN_B, not both")
        run_a, run_b = args.compare
        print(compare_runs(run_a, run_b, args.out))
        return 0
    if args.results is None:
        raise ValueError("give a results file, or --compare RUN_A RUN_B")
    print(render_report(args.results, args.out))
    return 0
