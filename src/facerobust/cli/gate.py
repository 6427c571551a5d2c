"""``facerobust gate verify-log``: check the gate's hash-chained audit log.

Exits 0 and prints the number of entries and the head hash when the chain holds; exits 1
naming the first broken entry (edited, deleted or inserted rows) otherwise. Record the head
hash somewhere else: a chain cut short at its end is only caught against it (``--head``).
"""

from __future__ import annotations

import argparse
import os
import sys

from facerobust.service.audit_log import verify_chain
from facerobust.service.config import DB_ENV, DEFAULT_DB, load_gate_config
from facerobust.service.storage import Store


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="gate_command", metavar="SUBCOMMAND", required=True)
    check = sub.add_parser("verify-log", help="check the audit log's hash chain (exit 1 at "
                           "the first broken entry)", description=__doc__)
    src = check.add_mutually_exclusive_group()
    src.add_argument("--db", help="database URL (default: $FACEROBUST_GATE_DB, then "
                     f"{DEFAULT_DB})")
    src.add_argument("--config", help="read the database URL from this gate TOML")
    check.add_argument("--head", help="the head hash recorded earlier: the chain must still "
                       "contain it (catches entries deleted at the end)")


def _database(args: argparse.Namespace) -> str:
    if args.config:
        return load_gate_config(args.config).database_url
    return str(args.db or os.environ.get(DB_ENV, "") or DEFAULT_DB)


def run(args: argparse.Namespace) -> int:
    url = _database(args)
    if url.startswith("sqlite:///") and not os.path.exists(url.removeprefix("sqlite:///")):
        raise ValueError(f"--db: no gate database at {url.removeprefix('sqlite:///')}")
    store = Store(url)
    try:
        report = verify_chain(store, args.head)
    finally:
        store.close()
    if not report.ok:
        print(f"audit log BROKEN at entry {report.broken_id}: {report.problem} "
              f"({report.rows} entries before it verified)", file=sys.stderr)
        return 1
    print(f"audit log OK: {report.rows} entries, head hash {report.head}")
    return 0
