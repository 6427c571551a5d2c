"""``facerobust demo``: the built-in audit on the embedded LFW subset (no download, no
``FACEROBUST_DATA``; minutes on 2 CPU cores), or on a full LFW copy with ``--data``."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from facerobust.cli.audit import print_outcome
from facerobust.cli.common import add_force_argument
from facerobust.eval.audit import run_audit
from facerobust.eval.config import parse_config, parse_toml


def demo_config_text() -> str:
    return resources.files("facerobust.eval").joinpath("demo.toml").read_text(encoding="utf-8")


def embedded_dataset() -> Path:
    """The LFW subset shipped inside the package (see its README.md)."""
    return Path(str(resources.files("facerobust.data").joinpath("demo/lfw-demo")))


def configure(parser: argparse.ArgumentParser) -> None:

    parser.add_argument("--out", type=Path, default=Path("runs/demo"),
                        help="output folder (default runs/demo); re-running resumes")
    parser.add_argument("--data", type=Path, default=None,
                        help="a full LFW copy (folder with pairs.txt) instead of the embedded "
                             "subset; the figures are the same")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_force_argument(parser)


def run(args: argparse.Namespace) -> int:

    text = demo_config_text()
    doc = parse_toml(text)
    data = args.data or embedded_dataset()
    if not (data / "pairs.txt").is_file():
        raise FileNotFoundError(f"{data}: not an LFW copy (no pairs.txt); the demo needs LFW")
    doc["data"]["root"] = str(data)
    cfg = parse_config(doc)
    path = run_audit(cfg, args.out, progress=not args.no_progress, force=args.force,
                     config_text=text)
    print_outcome(path)
    return 0
