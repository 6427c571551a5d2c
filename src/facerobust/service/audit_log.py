"""The gate's tamper-evident audit log: one row per request outcome, hash-chained.

Every request the gate answers (accepts, rejections, 401/403/404/413/415/422/429 refusals, key
creation and revocation, enrollments, unlocks) appends one row naming the key id (or
``"none"``), the client address, the identity as sent and as normalised, the HTTP status, the
outcome and the reason. Each row stores the SHA-256 of the previous row's hash and its own
fields (:func:`entry_hash`), so editing, deleting or reordering a row breaks the chain from
there on; :func:`verify_chain` names the first broken row. Deleting the newest rows leaves a
valid shorter chain: record the head hash elsewhere (``facerobust gate verify-log`` prints it)
to detect that too. Appends are serialised across threads, processes and gate instances
(:meth:`~facerobust.service.storage.Store.exclusive`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from facerobust.service.storage import Store
from facerobust.service.tables import AUDIT

GENESIS = "0" * 64  # the "previous hash" of the first row
PG_AUDIT_LOCK = 0x6661636563  # advisory lock id serialising appends across gate instances
MAX_PAGE = 1000
HASHED = ("id", "time", "method", "path", "status", "outcome", "key_id", "client",
          "identity_sent", "identity", "reason", "details", "prev_hash")
FILTERS = ("key_id", "identity", "outcome", "status", "path", "client")


@dataclass
class AuditRecord:
    """What one request's audit row will say; filled in as the request is handled."""

    method: str
    path: str
    client: str
    key_id: str = "none"
    identity_sent: str | None = None
    identity: str | None = None
    outcome: str = ""
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def entry_hash(row: dict[str, Any]) -> str:
    """SHA-256 over the row's fields (canonical JSON, the previous hash included)."""
    text = json.dumps({k: row[k] for k in HASHED}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def append(store: Store, record: AuditRecord, status: int) -> int:
    """Append ``record`` with its HTTP ``status``; returns the new row's id."""
    row = asdict(record)
    row.update(status=int(status), outcome=record.outcome or _outcome(status),
               details=json.dumps(record.details, sort_keys=True, default=str),
               identity_sent=_clip(record.identity_sent, 400), time=time.time())
    with store.exclusive(PG_AUDIT_LOCK) as conn:
        last = conn.execute(sa.select(AUDIT.c.id, AUDIT.c.hash)
                            .order_by(AUDIT.c.id.desc()).limit(1)).first()
        row["id"], row["prev_hash"] = (1, GENESIS) if last is None else (int(last[0]) + 1,
                                                                        str(last[1]))
        row["hash"] = entry_hash(row)
        conn.execute(AUDIT.insert().values(**row))
        conn.commit()
    return int(row["id"])


def _outcome(status: int) -> str:
    return {401: "unauthenticated", 403: "forbidden", 404: "not-found", 405: "bad-method",
            411: "no-length", 413: "too-large", 415: "bad-type", 422: "invalid",
            429: "throttled"}.get(status, "ok" if status < 400 else "error")


def _clip(text: str | None, n: int) -> str | None:
    return None if text is None else text[:n]


def page(store: Store, *, after_id: int = 0, limit: int = 100,
         filters: dict[str, Any] | None = None, since: float | None = None,
         until: float | None = None) -> list[dict[str, Any]]:
    """Rows after ``after_id`` (oldest first), at most ``limit``, matching ``filters``
    (exact values of :data:`FILTERS`) and the time range."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be 1-{MAX_PAGE}, got {limit}")
    query = sa.select(AUDIT).where(AUDIT.c.id > after_id).order_by(AUDIT.c.id).limit(limit)
    for name, value in (filters or {}).items():
        if name not in FILTERS:
            raise ValueError(f"unknown log filter {name!r}; use {', '.join(FILTERS)}")
        query = query.where(AUDIT.c[name] == value)
    if since is not None:
        query = query.where(AUDIT.c.time >= since)
    if until is not None:
        query = query.where(AUDIT.c.time < until)
    with store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [{**dict(r), "details": json.loads(r["details"])} for r in rows]


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify_chain` found: the rows checked, the head hash, the first break."""

    rows: int
    head: str
    broken_id: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_id is None


def _rows(store: Store, batch: int = 5000) -> Iterator[dict[str, Any]]:
    after = None
    while True:
        query = sa.select(AUDIT).order_by(AUDIT.c.id).limit(batch)
        if after is not None:
            query = query.where(AUDIT.c.id > after)
        with store.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1]["id"]


def verify_chain(store: Store, head: str | None = None) -> ChainReport:
    """Recompute the chain from the first row; the first row whose id, previous hash or own
    hash does not fit is named. With ``head`` (a hash recorded earlier) the chain must also
    still contain it: that catches rows deleted at its end, or a chain recomputed by someone
    with write access to the database."""
    prev, expected_id, n, seen = GENESIS, 1, 0, head is None
    for row in _rows(store):
        problem = ("" if row["id"] == expected_id else
                   f"id {row['id']} follows id {expected_id - 1} (rows missing or inserted)")
        if not problem and row["prev_hash"] != prev:
            problem = "its previous-hash does not match the row before it"
        if not problem and entry_hash(row) != row["hash"]:
            problem = "its contents do not match its hash (edited)"
        if problem:
            return ChainReport(n, prev, int(row["id"]), problem)
        prev, expected_id, n = row["hash"], expected_id + 1, n + 1
        seen = seen or row["hash"] == head
    if not seen:
        return ChainReport(n, prev, expected_id, "the recorded head hash is not in the chain "
                           "(entries deleted at its end, or the chain was recomputed)")
    return ChainReport(n, prev)


__all__ = ["AUDIT", "AuditRecord", "ChainReport", "FILTERS", "append", "entry_hash", "page",
           "verify_chain"]
