"""The gate database's tables (SQLAlchemy Core, one metadata): gallery templates, hashed API
keys, the decision log that counts failure budgets, and the hash-chained audit log."""

from __future__ import annotations

import sqlalchemy as sa

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
    sa.Column("roles", sa.String(64), nullable=True),  # comma-separated; NULL = legacy row
    sa.Column("expires", sa.Float, nullable=True),
    sa.Column("revoked", sa.Float, nullable=True),
    sa.Column("last_used", sa.Float, nullable=True),
)
ADDED_KEY_COLUMNS = ("roles", "expires", "revoked", "last_used")  # added on start when absent
ROLES = ("admin", "enroll", "verify", "identify")
CLIENT_ROLES = frozenset({"verify", "identify"})  # what a client key may do by default
ADMIN_ROLES = frozenset(ROLES)  # the environment's admin key
LAST_USED_GRANULARITY_S = 1.0  # last_used is written at most this often per key
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

AUDIT = sa.Table(
    "audit_log", META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("time", sa.Float, nullable=False, index=True),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.String(200), nullable=False),
    sa.Column("status", sa.Integer, nullable=False, index=True),
    sa.Column("outcome", sa.String(32), nullable=False, index=True),
    sa.Column("key_id", sa.String(32), nullable=False, index=True),
    sa.Column("client", sa.String(64), nullable=False),
    sa.Column("identity_sent", sa.String(400), nullable=True),
    sa.Column("identity", sa.String(200), nullable=True, index=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("details", sa.Text, nullable=False),  # JSON object: scores, flags, key ids
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
