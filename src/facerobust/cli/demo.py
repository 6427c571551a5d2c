"""``facerobust demo``: the built-in audit on LFW (finishes in minutes on 2 CPU cores)."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path


def demo_config_text() -> str:
    return resources.files("facerobust.eval").joinpath("demo.toml").read_text(encoding="utf-8")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/demo"),
                        help="output folder (default runs/demo); re-running resumes")
    parser.add_argument("--data", type=Path, default=None,
                        help="LFW folder (default: lfw-gray or lfw under FACEROBUST_DATA/cache)")
    parser.add_argument("--fetch", action="store_true",
                        help="download LFW into the cache first when no copy is found")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    from facerobust import paths
    from facerobust.cli.audit import print_outcome
    from facerobust.eval.audit import run_audit
    from facerobust.eval.config import parse_config, tomllib

    text = demo_config_text()
    doc = tomllib.loads(text)
    data = args.data
    if data is None:
        found = paths.find_dataset("lfw-gray") or paths.find_dataset("lfw")
        if found is None and args.fetch:
            from facerobust.data.fetch import fetch_lfw

            found = fetch_lfw()
        if found is None:
            raise FileNotFoundError(
                "no LFW copy found: set FACEROBUST_DATA to a folder holding lfw-gray/ or lfw/, "
                "run `facerobust data fetch lfw`, or use `facerobust demo --fetch`")
        data = found
    doc["data"]["dataset"] = data.name
    doc["data"]["root"] = str(data)
    cfg = parse_config(doc)
    path = run_audit(cfg, args.out, progress=not args.no_progress, config_text=text)
    print_outcome(path)
    return 0
