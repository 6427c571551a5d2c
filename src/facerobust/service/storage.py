"""The gate's database: gallery templates, hashed API keys and the append-only decision log.

SQLAlchemy Core over SQLite (the embedded default, opened in WAL mode with ``synchronous=FULL``
so an acknowledged write survives ``kill -9``) or PostgreSQL (``postgresql+psycopg://...``, for
several gate instances sharing one gallery). API keys are stored as SHA-256 hashes only; the
plain key is shown once, when it is created.

>>> store = Store("sqlite:///gate.db")                       # doctest: +SKIP
>>> key_id, key = store.create_key(roles={"verify"})          # doctest: +SKIP
>>> store.key_for(key).key_id == key_id                      # doctest: +SKIP
True

Keys have roles (:data:`ROLES`), an optional expiry and a revocation time; the key check reads
the database on every request, so a revocation is seen at once by every gate instance sharing
it. Columns added since a database was created are added on start (``ALTER TABLE``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from facerobust.service.tables import (
    ADDED_KEY_COLUMNS,
    ADMIN_ROLES,
    CLIENT_ROLES,
    DECISIONS,
    IDENTITY_FAILURES,
    KEY_FAILURES,
    KEYS,
    LAST_USED_GRANULARITY_S,
    META,
    ROLES,
    TEMPLATES,
)

KEY_PREFIX = "fr_"  # generated keys start with it: never with "-" (a command-line option)


def new_secret(nbytes: int) -> str:
    """A fresh random key of ``nbytes`` bytes (base64url), with :data:`KEY_PREFIX`."""
    return KEY_PREFIX + secrets.token_urlsafe(nbytes)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass
class LogEntry:
    """What the decision-log row of a reserved request says once it is decided."""

    outcome: str = "error"
    claimed: str | None = None
    probe_sha256: str | None = None
    score: float | None = None
    flags: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiKey:
    """A stored key as the gate checks it (never the key itself)."""

    key_id: str
    roles: frozenset[str]
    expires: float | None = None
    revoked: float | None = None

    @property
    def admin(self) -> bool:
        return "admin" in self.roles


def parse_roles(text: str) -> frozenset[str]:
    """Roles from ``"verify,identify"`` (commas or spaces); unknown ones are a ValueError."""
    roles = frozenset(r for r in text.replace(",", " ").split() if r)
    unknown = sorted(roles - set(ROLES))
    if unknown or not roles:
        raise ValueError(f"unknown role(s) {', '.join(unknown) or '(none)'}; "
                         f"give one or more of {', '.join(ROLES)}")
    return roles


def format_roles(roles: frozenset[str]) -> str:
    return ",".join(r for r in ROLES if r in roles)


def _row_roles(roles: str | None, admin: bool) -> frozenset[str]:
    """A row's roles; rows from before roles existed: admin -> all roles, else a client's."""
    if roles:
        return frozenset(roles.split(","))
    return ADMIN_ROLES if admin else CLIENT_ROLES


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite gets WAL mode, PostgreSQL a small pool with pre-ping."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise ValueError(f"database URL {url!r} is not a valid SQLAlchemy URL") from None
    if parsed.get_backend_name() == "sqlite":
        _create_private(parsed.database)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return sa.create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)


def _create_private(path: str | None) -> None:
    """Create the SQLite file with mode 0600 (before SQLite creates it world-readable); its
    -wal and -shm files inherit the mode."""
    if not path or path == ":memory:" or path.startswith("file:") or os.path.exists(path):
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _add_key_columns(engine: sa.Engine) -> None:
    """Add the key columns a database created by an older gate lacks (SQLite, PostgreSQL)."""
    have = {c["name"] for c in sa.inspect(engine).get_columns(KEYS.name)}
    with engine.begin() as conn:
        for name in ADDED_KEY_COLUMNS:
            if name not in have:
                ctype = KEYS.c[name].type.compile(dialect=engine.dialect)
                conn.execute(sa.text(f"ALTER TABLE {KEYS.name} ADD COLUMN {name} {ctype}"))


class Store:
    """Gallery, keys and decision log behind one SQLAlchemy engine (thread-safe)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.backend = self.engine.dialect.name
        self.write_lock = threading.Lock()  # serialises exclusive transactions
        META.create_all(self.engine)
        _add_key_columns(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def exclusive(self, pg_lock: int) -> Iterator[sa.Connection]:
        """A connection in a transaction no other writer (thread, process, gate instance)
        runs beside: a process lock plus ``BEGIN IMMEDIATE`` on SQLite, the advisory lock
        ``pg_lock`` on PostgreSQL. The caller commits or rolls back."""
        with self.write_lock, self.engine.connect() as conn:
            if self.backend == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif self.backend == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(pg_lock)))
            yield conn

    # -- keys ----------------------------------------------------------------------------
    def ensure_key(self, key: str, *, admin: bool, key_id: str) -> None:
        """Store ``key`` (hashed) under ``key_id`` unless that hash is already there; an
        admin key holds every role, another key a client's default roles."""
        digest = hash_key(key)
        roles = ADMIN_ROLES if admin else CLIENT_ROLES
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(KEYS.c.key_id).where(KEYS.c.key_sha256 == digest))
            if row.first() is not None:
                return
            conn.execute(KEYS.delete().where(KEYS.c.key_id == key_id))
            conn.execute(KEYS.insert().values(key_id=key_id, key_sha256=digest, admin=admin,
                                              roles=format_roles(roles), created=time.time()))

    def create_key(self, *, admin: bool = False, roles: frozenset[str] | None = None,
                   expires: float | None = None) -> tuple[str, str]:
        """A new random key: ``(key_id, key)``; only its hash is stored. ``roles`` default to
        a client's (verify, identify), or all of them with ``admin``."""
        roles = roles or (ADMIN_ROLES if admin else CLIENT_ROLES)
        key_id, key = "k" + secrets.token_hex(6), new_secret(24)
        with self.engine.begin() as conn:
            conn.execute(KEYS.insert().values(
                key_id=key_id, key_sha256=hash_key(key), admin="admin" in roles,
                roles=format_roles(roles), created=time.time(), expires=expires))
        return key_id, key

    def key_for(self, key: str) -> ApiKey | None:
        """The stored key (read from the database on every call, so a revocation by another
        instance is seen at once); notes its last use (at most once a second)."""
        cols = (KEYS.c.key_id, KEYS.c.admin, KEYS.c.roles, KEYS.c.expires, KEYS.c.revoked,
                KEYS.c.last_used)
        digest, now = hash_key(key), time.time()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*cols).where(KEYS.c.key_sha256 == digest)).first()
        if row is None:
            return None
        if row[5] is None or now - float(row[5]) >= LAST_USED_GRANULARITY_S:
            with self.engine.begin() as conn:
                conn.execute(KEYS.update().where(KEYS.c.key_sha256 == digest)
                             .values(last_used=now))
        return ApiKey(str(row[0]), _row_roles(row[2], bool(row[1])),
                      expires=row[3], revoked=row[4])

    def revoke_key(self, key_id: str) -> bool:
        """Revoke ``key_id`` now; False when no such (unrevoked) key exists."""
        with self.engine.begin() as conn:
            done = conn.execute(KEYS.update().where(KEYS.c.key_id == key_id,
                                                    KEYS.c.revoked.is_(None))
                                .values(revoked=time.time()))
        return bool(done.rowcount)

    def list_keys(self) -> list[dict[str, Any]]:
        """Every key's id, roles, creation, expiry, revocation and last use (never the key
        or its hash), oldest first."""
        query = sa.select(KEYS.c.key_id, KEYS.c.admin, KEYS.c.roles, KEYS.c.created,
                          KEYS.c.expires, KEYS.c.revoked, KEYS.c.last_used
                          ).order_by(KEYS.c.created)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [{"key_id": r[0], "role": format_roles(_row_roles(r[2], bool(r[1]))),
                 "created": r[3], "expires": r[4], "revoked": r[5], "last_used": r[6]}
                for r in rows]

    # -- gallery -------------------------------------------------------------------------
    def enroll(self, identity: str, items: list[tuple[str, np.ndarray]], *,
               replace: bool = False) -> int:
        """Add ``(photo_sha256, embedding)`` templates of ``identity`` in one transaction
        (after deleting its old ones with ``replace``); photos already enrolled for it are
        skipped. Returns the number added."""
        for _ in range(5):  # a concurrent enrollment of the same photo: retry, it is skipped
            try:
                return self._enroll_once(identity, items, replace)
            except IntegrityError:
                continue
        raise RuntimeError(f"could not enroll {identity!r}: repeated write conflicts")

    def _enroll_once(self, identity: str, items: list[tuple[str, np.ndarray]],
                     replace: bool) -> int:
        now, added = time.time(), 0
        with self.engine.begin() as conn:
            if replace:
                conn.execute(TEMPLATES.delete().where(TEMPLATES.c.identity == identity))
            have = {r[0] for r in conn.execute(sa.select(TEMPLATES.c.photo_sha256)
                                               .where(TEMPLATES.c.identity == identity))}
            for sha, emb in items:
                if sha in have:
                    continue
                have.add(sha)
                conn.execute(TEMPLATES.insert().values(
                    identity=identity, photo_sha256=sha, created=now,
                    embedding=np.asarray(emb, dtype="<f4").tobytes()))
                added += 1
        return added

    def templates(self, identity: str | None = None) -> tuple[list[str], np.ndarray]:
        """``(identities, embeddings (M, D) float32)`` of one identity or the whole gallery."""
        query = sa.select(TEMPLATES.c.identity, TEMPLATES.c.embedding).order_by(TEMPLATES.c.id)
        if identity is not None:
            query = query.where(TEMPLATES.c.identity == identity)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        embs = np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows]).astype(np.float32)
        return [str(r[0]) for r in rows], embs

    def identities(self) -> list[str]:
        """The enrolled identity names, in enrollment order."""
        query = (sa.select(TEMPLATES.c.identity).group_by(TEMPLATES.c.identity)
                 .order_by(sa.func.min(TEMPLATES.c.id)))
        with self.engine.connect() as conn:
            return [str(r[0]) for r in conn.execute(query)]

    def delete_identity(self, identity: str) -> int:
        """Delete every template of ``identity``; returns how many there were."""
        with self.engine.begin() as conn:
            done = conn.execute(TEMPLATES.delete().where(TEMPLATES.c.identity == identity))
        return int(done.rowcount)

    def gallery_version(self) -> tuple[int, int]:
        """``(templates, newest template id)``: changes with every enrollment and deletion."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(sa.func.count(), sa.func.max(TEMPLATES.c.id))).one()
        return int(row[0]), int(row[1] or 0)

    def gallery_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(TEMPLATES.c.identity, sa.func.count())
                                .group_by(TEMPLATES.c.identity)).all()
        return {str(r[0]): int(r[1]) for r in rows}

    # -- decision log --------------------------------------------------------------------
    def log(self, *, endpoint: str, key_id: str, outcome: str, claimed: str | None = None,
            probe_sha256: str | None = None, score: float | None = None,
            flags: dict[str, Any] | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(DECISIONS.insert().values(
                time=time.time(), endpoint=endpoint, key_id=key_id, claimed_identity=claimed,
                probe_sha256=probe_sha256, score=score, flags=json.dumps(flags or {}),
                outcome=outcome))

    def finish(self, row_id: int, entry: LogEntry) -> None:
        """Write the decision of a reserved request into its log row."""
        with self.engine.begin() as conn:
            conn.execute(DECISIONS.update().where(DECISIONS.c.id == row_id).values(
                outcome=entry.outcome, claimed_identity=entry.claimed,
                probe_sha256=entry.probe_sha256, score=entry.score,
                flags=json.dumps(entry.flags)))

    def log_row(self, conn: sa.Connection, *, endpoint: str, key_id: str, outcome: str,
                claimed: str | None = None, flags: dict[str, Any] | None = None) -> int:
        """Append a log row inside the caller's transaction; returns its id."""
        row = conn.execute(DECISIONS.insert().values(
            time=time.time(), endpoint=endpoint, key_id=key_id, claimed_identity=claimed,
            flags=json.dumps(flags or {}), outcome=outcome)).inserted_primary_key
        return int(row[0])

    def rejections_since(self, since: float, *, key_id: str | None = None,
                         claimed: str | None = None) -> int:
        """Failures logged after ``since`` for a key and/or a claimed identity (rejections
        and pending requests; for a key also ``unknown`` identify answers)."""
        outcomes = IDENTITY_FAILURES if key_id is None else KEY_FAILURES
        query = sa.select(sa.func.count()).select_from(DECISIONS).where(
            DECISIONS.c.time >= since, DECISIONS.c.outcome.in_(outcomes))
        if key_id is not None:
            query = query.where(DECISIONS.c.key_id == key_id)
        if claimed is not None:
            query = query.where(DECISIONS.c.claimed_identity == claimed)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def decisions(self, limit: int | None = None) -> list[dict[str, Any]]:
        query = sa.select(DECISIONS).order_by(DECISIONS.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [{**dict(r), "flags": json.loads(r["flags"])} for r in rows]

