"""The gate's database: gallery templates, hashed API keys and the append-only decision log.

SQLAlchemy Core over SQLite (the embedded default, opened in WAL mode with ``synchronous=FULL``
so an acknowledged write survives ``kill -9``) or PostgreSQL (``postgresql+psycopg://...``, for
several gate instances sharing one gallery). API keys are stored as SHA-256 hashes only; the
plain key is shown once, when it is created.

>>> store = Store("sqlite:///gate.db")                       # doctest: +SKIP
>>> key_id, key = store.create_key(admin=False)             # doctest: +SKIP
>>> store.key_for(key).key_id == key_id                      # doctest: +SKIP
True
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

META = sa.MetaData()
TEMPLATES = sa.Table(
    "templates", META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("identity", sa.String(200), nullable=False, index=True),
    sa.Column("photo_sha256", sa.String(64), nullable=False),
    sa.Column("embedding", sa.LargeBinary, nullable=False),  # float32 little-endian
    sa.Column("created", sa.Float, nullable=False),
    sa.UniqueConstraint("identity", "photo_sha256", name="uq_identity_photo"),
)
KEYS = sa.Table(
    "api_keys", META,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("key_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("admin", sa.Boolean, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)
DECISIONS = sa.Table(
    "decisions", META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.Float, nullable=False, index=True),
    sa.Column("endpoint", sa.String(16), nullable=False),
    sa.Column("key_id", sa.String(32), nullable=False, index=True),
    sa.Column("claimed_identity", sa.String(200), nullable=True, index=True),
    sa.Column("probe_sha256", sa.String(64), nullable=True),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("flags", sa.Text, nullable=False),  # JSON object (detector flags, reasons)
    sa.Column("outcome", sa.String(16), nullable=False),
)
REJECT = "reject"
UNKNOWN = "unknown"  # /identify found no one: a failed query, counted like a rejection
PENDING = "pending"  # a reserved, not yet decided request: counted as a failure until done
KEY_FAILURES = (REJECT, UNKNOWN, PENDING)  # what counts against a key's budget
IDENTITY_FAILURES = (REJECT, PENDING)  # ... and against a claimed identity's


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
    key_id: str
    admin: bool


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
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return sa.create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)


class Store:
    """Gallery, keys and decision log behind one SQLAlchemy engine (thread-safe)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.backend = self.engine.dialect.name
        self.budget_lock = threading.Lock()  # serialises budget reservations
        META.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- keys ----------------------------------------------------------------------------
    def ensure_key(self, key: str, *, admin: bool, key_id: str) -> None:
        """Store ``key`` (hashed) under ``key_id`` unless that hash is already there."""
        digest = hash_key(key)
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(KEYS.c.key_id).where(KEYS.c.key_sha256 == digest))
            if row.first() is not None:
                return
            conn.execute(KEYS.delete().where(KEYS.c.key_id == key_id))
            conn.execute(KEYS.insert().values(key_id=key_id, key_sha256=digest, admin=admin,
                                              created=time.time()))

    def create_key(self, *, admin: bool = False) -> tuple[str, str]:
        """A new random key: ``(key_id, key)``; only its hash is stored."""
        key_id, key = "k" + secrets.token_hex(6), secrets.token_urlsafe(24)
        with self.engine.begin() as conn:
            conn.execute(KEYS.insert().values(key_id=key_id, key_sha256=hash_key(key),
                                              admin=admin, created=time.time()))
        return key_id, key

    def key_for(self, key: str) -> ApiKey | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(KEYS.c.key_id, KEYS.c.admin)
                               .where(KEYS.c.key_sha256 == hash_key(key))).first()
        return None if row is None else ApiKey(str(row[0]), bool(row[1]))

    # -- gallery -------------------------------------------------------------------------
    def enroll(self, identity: str, items: list[tuple[str, np.ndarray]]) -> int:
        """Add ``(photo_sha256, embedding)`` templates of ``identity`` in one transaction;
        photos already enrolled for it are skipped. Returns the number added."""
        for _ in range(5):  # a concurrent enrollment of the same photo: retry, it is skipped
            try:
                return self._enroll_once(identity, items)
            except IntegrityError:
                continue
        raise RuntimeError(f"could not enroll {identity!r}: repeated write conflicts")

    def _enroll_once(self, identity: str, items: list[tuple[str, np.ndarray]]) -> int:
        now, added = time.time(), 0
        with self.engine.begin() as conn:
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

