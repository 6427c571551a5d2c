"""The gate's failure budgets and lock-out policy, checked and counted atomically.

Following NIST SP 800-63B's rate-limiting guidance, failures (rejections, ``unknown``
identify answers, and requests still being decided) are counted in the shared decision log:

* per key: ``limit`` failures within the window -> the key is locked out (403);
* per (key, identity): ``pair_limit`` failures -> that key may not claim that identity (403);
* per identity: from ``limit`` failures on, each further attempt waits an escalating delay
  (``delay_s``, doubling per failure, at most ``max_delay_s``; 429 with ``Retry-After``)
  instead of one hard lock any key could trigger; the admin key is exempt.

A genuine success (``accept``) resets the identity's count (and the pair's); ``POST /unlock``
(admin) resets an identity or a key. :func:`reserve` checks and counts in one transaction
(a process lock plus ``BEGIN IMMEDIATE`` on SQLite, ``pg_advisory_xact_lock`` on PostgreSQL).

>>> Policy(limit=20, pair_limit=20, window_s=3600, delay_s=1, max_delay_s=60).delay(22)
4.0
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from facerobust.service.storage import Store
from facerobust.service.tables import DECISIONS, IDENTITY_FAILURES, KEY_FAILURES, PENDING

ACCEPT = "accept"
UNLOCK_KEY, UNLOCK_IDENTITY = "unlock-key", "unlock-identity"
PG_LOCK = 0x6661636562  # advisory lock id serialising reservations across gate instances


@dataclass(frozen=True)
class Policy:
    """Budgets (``limit`` 0 = none) and the per-identity escalating delay."""

    limit: int
    pair_limit: int
    window_s: float
    delay_s: float
    max_delay_s: float

    def delay(self, failures: int) -> float:
        """Seconds an identity with ``failures`` recent failures waits after the last one."""
        if self.limit <= 0 or failures < self.limit:
            return 0.0
        return min(self.max_delay_s, self.delay_s * 2.0 ** min(failures - self.limit, 60))


@dataclass(frozen=True)
class Refusal:
    scope: str  # "key" | "pair" | "identity"
    failures: int
    retry_after: float = 0.0


def reserve(store: Store, policy: Policy, *, endpoint: str, key_id: str, claimed: str | None,
            delays: bool = True) -> tuple[int | None, Refusal | None]:
    """Check the budgets and count this request in one transaction: ``(row id, None)`` with
    a ``pending`` log row (a failure until decided), or ``(None, refusal)``."""
    with store.exclusive(PG_LOCK) as conn:
        refusal = check(conn, policy, key_id, claimed, delays=delays)
        if refusal is not None:
            conn.rollback()
            return None, refusal
        row = store.log_row(conn, endpoint=endpoint, key_id=key_id, outcome=PENDING,
                            claimed=claimed)
        conn.commit()
    return row, None


def check(conn: sa.Connection, policy: Policy, key_id: str, claimed: str | None, *,
          delays: bool = True) -> Refusal | None:
    if policy.limit <= 0:
        return None
    now = time.time()
    key_since = _since(conn, now - policy.window_s, (UNLOCK_KEY,), key_id=key_id)
    n, _ = _failures(conn, key_since, KEY_FAILURES, key_id=key_id)
    if n >= policy.limit:
        return Refusal("key", n)
    if claimed is None:
        return None
    pair_since = max(_since(conn, key_since, (ACCEPT,), key_id=key_id, claimed=claimed),
                     _since(conn, key_since, (UNLOCK_IDENTITY,), claimed=claimed))
    n, _ = _failures(conn, pair_since, IDENTITY_FAILURES, key_id=key_id, claimed=claimed)
    if n >= policy.pair_limit:
        return Refusal("pair", n)
    n, wait = identity_state(conn, policy, claimed, now)
    return Refusal("identity", n, wait) if delays and wait > 0 else None


def identity_state(conn: sa.Connection, policy: Policy, identity: str,
                   now: float) -> tuple[int, float]:
    """``(failures since the last reset, seconds until its next attempt)`` of ``identity``."""
    since = _since(conn, now - policy.window_s, (ACCEPT, UNLOCK_IDENTITY), claimed=identity)
    n, last = _failures(conn, since, IDENTITY_FAILURES, claimed=identity)
    return n, max(0.0, last + policy.delay(n) - now)


def under_attack(store: Store, policy: Policy, identity: str) -> bool:
    """Has ``identity`` reached the failure limit since its last reset (then /identify must
    not name it)?"""
    if policy.limit <= 0:
        return False
    with store.engine.connect() as conn:
        return identity_state(conn, policy, identity, time.time())[0] >= policy.limit


def unlock(store: Store, by: str, *, identity: str | None, key_id: str | None) -> None:
    """Reset the counts of ``identity`` and/or ``key_id`` (logged, ``by`` = admin key id)."""
    with store.engine.begin() as conn:
        if identity is not None:
            store.log_row(conn, endpoint="unlock", key_id=by, outcome=UNLOCK_IDENTITY,
                          claimed=identity)
        if key_id is not None:
            store.log_row(conn, endpoint="unlock", key_id=key_id, outcome=UNLOCK_KEY,
                          flags={"by": by})


def _since(conn: sa.Connection, floor: float, outcomes: tuple[str, ...], *,
           key_id: str | None = None, claimed: str | None = None) -> float:
    """The later of ``floor`` and the last row with one of ``outcomes`` (a reset)."""
    query = sa.select(sa.func.max(DECISIONS.c.time)).where(DECISIONS.c.outcome.in_(outcomes))
    query = _match(query, key_id, claimed)
    last = conn.execute(query).scalar_one()
    return floor if last is None else max(floor, float(last))


def _failures(conn: sa.Connection, since: float, outcomes: tuple[str, ...], *,
              key_id: str | None = None, claimed: str | None = None) -> tuple[int, float]:
    """``(count, time of the last)`` of failure rows after ``since``."""
    query = sa.select(sa.func.count(), sa.func.max(DECISIONS.c.time)).where(
        DECISIONS.c.time > since, DECISIONS.c.outcome.in_(outcomes))
    n, last = conn.execute(_match(query, key_id, claimed)).one()
    return int(n), float(last or 0.0)


def _match(query: sa.Select[Any], key_id: str | None,
           claimed: str | None) -> sa.Select[Any]:
    if key_id is not None:
        query = query.where(DECISIONS.c.key_id == key_id)
    if claimed is not None:
        query = query.where(DECISIONS.c.claimed_identity == claimed)
    return query
