"""``facerobust audit CONFIG --out DIR``: run (or resume) an audit and write the report."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from facerobust.cli.common import add_force_argument, print_skipped
from facerobust.eval.audit import run_audit
from facerobust.eval.config import load_config, with_head
from facerobust.eval.results_load import load_results
from facerobust.report import render_report


def configure(parser: argparse.ArgumentParser) -> None:

    parser.add_argument("config", type=Path, help="TOML audit config (see examples/*.toml)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder; re-running into it resumes an interrupted run")
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset folder (overrides FACEROBUST_DATA/cache lookup)")
    parser.add_argument("--head", default=None, metavar="PATH",
                        help="identification head saved by `facerobust train-head` (overrides "
                             "[identification] head and enables identification)")
    parser.add_argument("--executor", choices=("local", "ray"), default=None,
                        help="where units run: this process (local, the default) or Ray tasks, "
                             "one per unit or per [run] shard_size samples of an attack / "
                             "minimal unit (overrides [run] executor; needs facerobust[scale])")
    parser.add_argument("--address", default=None, metavar="ADDR",
                        help="Ray cluster to join with --executor ray (e.g. ray://head:10001); "
                             "default: start a local cluster")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_force_argument(parser)


def print_outcome(results_path: Path) -> None:
    """Render ``report.html`` beside ``results_path`` (the report layer sits above the audit
    engine, so the command renders it), then print the summary and where both files are."""
    render_report(results_path)
    results = load_results(results_path)
    print("\n".join(f"- {s}" for s in (results.summary.sentences if results.summary else [])))
    print_skipped([s.to_dict() for s in results.dataset.skipped])
    print(f"results: {results_path}")
    print(f"report:  {results_path.parent / 'report.html'}")


def run(args: argparse.Namespace) -> int:

    cfg = load_config(args.config)
    if args.head:
        cfg = with_head(cfg, args.head)
    if args.executor:
        cfg = replace(cfg, run=replace(cfg.run, executor=args.executor))
    if args.address and cfg.run.executor != "ray":
        raise ValueError("--address needs --executor ray (or [run] executor = \"ray\")")
    path = run_audit(cfg, args.out, data=args.data, progress=not args.no_progress,
                     force=args.force, address=args.address,
                     config_text=args.config.read_text(encoding="utf-8"))
    print_outcome(path)
    return 0
