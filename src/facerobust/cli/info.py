"""``facerobust info``: what is installed, where things live, which models and data exist."""

from __future__ import annotations

import argparse
import json

from facerobust.info import collect


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:

    facts = collect()
    if args.json:
        print(json.dumps(facts, indent=2))
        return 0
    print(f"facerobust {facts['versions']['facerobust']} on {facts['platform']}")
    print("versions:")
    for pkg, ver in facts["versions"].items():
        print(f"  {pkg:32s} {ver or 'not installed'}")
    t = facts["torch"]
    print(f"torch: device={t['device']} threads={t['threads']} cuda={t['cuda']}")
    print(f"cache: {facts['cache_dir']}  (set FACEROBUST_CACHE to move it)")
    print(f"data roots: {', '.join(facts['data_roots'])}  (set FACEROBUST_DATA)")
    print("models:")
    for row in facts["models"]:
        state = row["weights"] if row["available"] else f"missing - {row['note']}"
        print(f"  {row['name']:16s} {state}")
    print("datasets:")
    for name, where in facts["datasets"].items():
        print(f"  {name:16s} {where or 'not found'}")
    return 0
