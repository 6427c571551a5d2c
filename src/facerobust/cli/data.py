"""``facerobust data``: dataset utilities (``fetch lfw``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    fetch = sub.add_parser("fetch", help="download a public dataset into the cache",
                           description="Download a public dataset, verify its sha256 "
                           "checksums and extract it atomically.")
    fetch.add_argument("dataset", choices=["lfw"], help="dataset to download")
    fetch.add_argument("--dest", type=Path, default=None,
                       help="target folder (default: $FACEROBUST_CACHE/datasets/lfw)")
    fetch.add_argument("--base-url", default=None,
                       help="mirror URL serving the files by name (default: scikit-learn's)")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "data_command", None) != "fetch":
        print("usage: facerobust data fetch lfw [--dest DIR]", file=sys.stderr)
        return 2
    from facerobust.data.fetch import fetch_lfw

    root = fetch_lfw(args.dest, base_url=args.base_url, progress=not args.no_progress)
    print(f"LFW ready at {root}")
    return 0
