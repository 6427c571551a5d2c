"""``facerobust cache verify [--fix]`` and ``facerobust cache clear chips|weights|datasets``."""

from __future__ import annotations

import argparse
import sys

from facerobust import paths
from facerobust.cache import clear_cache, verify_cache


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="cache_command", metavar="ACTION")
    verify = sub.add_parser("verify", help="check every cache entry against its recorded hash")
    verify.add_argument("--fix", action="store_true",
                        help="remove damaged entries (rebuilt or re-fetched on next use)")
    clear = sub.add_parser("clear", help="remove cache folders")
    clear.add_argument("what", nargs="+", help="chips, weights and/or datasets")


def run(args: argparse.Namespace) -> int:

    if args.cache_command == "verify":
        report = verify_cache(fix=args.fix)
        counts = ", ".join(f"{n} {kind}" for kind, n in report.checked.items()) or "nothing"
        print(f"checked {counts} under {paths.cache_dir()}")
        for line in report.damaged:
            print(f"DAMAGED {line}")
        for line in report.removed:
            print(f"removed {line}")
        print(f"{len(report.damaged)} damaged")
        return 1 if report.damaged and not args.fix else 0
    if args.cache_command == "clear":
        for folder in clear_cache(args.what):
            print(f"removed {folder}")
        return 0
    print("usage: facerobust cache {verify,clear} ...", file=sys.stderr)
    return 2
