"""The gate's store on SQLite and PostgreSQL: gallery, hashed keys, decision log, concurrency."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from facerobust.service.storage import Store, hash_key, parse_roles
from facerobust.service.tables import ADDED_KEY_COLUMNS, KEYS, ROLES


def _emb(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(8).astype(np.float32)


def test_gallery_roundtrip_and_dedupe(db_url: str) -> None:
    store = Store(db_url)
    assert store.enroll("alice", [("a1", _emb(1)), ("a2", _emb(2))]) == 2
    assert store.enroll("alice", [("a2", _emb(2)), ("a3", _emb(3))]) == 1  # a2 skipped
    store.enroll("bob", [("b1", _emb(4))])
    names, embs = store.templates("alice")
    assert names == ["alice"] * 3
    np.testing.assert_array_equal(embs[0], _emb(1))
    assert store.gallery_counts() == {"alice": 3, "bob": 1}
    assert store.templates("nobody")[1].shape[0] == 0
    store.close()


def test_keys_are_stored_hashed(db_url: str) -> None:
    store = Store(db_url)
    key_id, key = store.create_key(admin=False)
    assert key.startswith("fr_") and len(key) >= 35  # never "-..." on a command line
    store.ensure_key("admin-secret-0123456789", admin=True, key_id="admin")
    found = store.key_for(key)
    assert found is not None and found.key_id == key_id and not found.admin
    assert store.key_for("admin-secret-0123456789").admin  # type: ignore[union-attr]
    assert store.key_for("wrong") is None
    with store.engine.connect() as conn:
        stored = [r[0] for r in conn.execute(sa.select(KEYS.c.key_sha256))]
    assert hash_key(key) in stored and key not in stored
    store.close()


def test_decision_log_and_rejection_count(db_url: str) -> None:
    store = Store(db_url)
    t0 = time.time()
    store.log(endpoint="verify", key_id="k1", outcome="reject", claimed="alice",
              probe_sha256="f" * 64, score=0.9, flags={"det.reject": False})
    store.log(endpoint="verify", key_id="k1", outcome="accept", claimed="alice", score=0.1)
    store.log(endpoint="verify", key_id="k2", outcome="reject", claimed="bob", score=0.8)
    assert store.rejections_since(t0 - 1, key_id="k1") == 1
    assert store.rejections_since(t0 - 1, claimed="bob") == 1
    assert store.rejections_since(time.time() + 10, key_id="k1") == 0
    first = store.decisions()[0]
    assert first["probe_sha256"] == "f" * 64 and first["flags"] == {"det.reject": False}
    assert first["claimed_identity"] == "alice" and first["score"] == pytest.approx(0.9)
    store.close()


def test_concurrent_enrollment_of_one_identity(db_url: str) -> None:
    store = Store(db_url)
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        try:  # every worker adds its own photos and one photo all of them share
            store.enroll("carol", [("shared", _emb(0))] + [(f"w{w}p{i}", _emb(10 * w + i))
                                                          for i in range(3)])
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert store.gallery_counts() == {"carol": 1 + 8 * 3}
    store.close()


def test_key_roles_expiry_revocation_and_listing(db_url: str) -> None:
    store = Store(db_url)
    store.ensure_key("admin-secret-0123456789", admin=True, key_id="admin")
    client_id, client = store.create_key()
    enroller_id, enroller = store.create_key(roles=frozenset({"enroll"}), expires=123.0)
    found = store.key_for(client)
    assert found is not None and found.roles == {"verify", "identify"} and not found.admin
    assert store.key_for("admin-secret-0123456789").roles == set(ROLES)  # type: ignore[union-attr]
    assert store.key_for(enroller).expires == 123.0  # type: ignore[union-attr]
    assert store.revoke_key(client_id) and not store.revoke_key(client_id)
    assert store.key_for(client).revoked is not None  # type: ignore[union-attr]
    listed = {k["key_id"]: k for k in store.list_keys()}
    assert listed[enroller_id]["role"] == "enroll" and listed[enroller_id]["last_used"]
    assert set(listed[client_id]) == {"key_id", "role", "created", "expires", "revoked",
                                      "last_used"}
    assert client not in repr(listed) and hash_key(client) not in repr(listed)
    store.close()


def test_roles_parse_and_refuse_unknown() -> None:
    assert parse_roles("verify, enroll") == {"verify", "enroll"}
    with pytest.raises(ValueError, match="unknown role.*superuser"):
        parse_roles("verify,superuser")
    with pytest.raises(ValueError, match="unknown role"):
        parse_roles(" , ")


def test_a_database_from_before_key_roles_keeps_its_keys(db_url: str) -> None:
    """A key table without the life-cycle columns gets them on start; old keys keep working
    (admin -> every role, a client key -> verify and identify)."""
    engine = sa.create_engine(db_url)
    old = sa.MetaData()
    table = sa.Table("api_keys", old, *(sa.Column(c.name, c.type, primary_key=c.primary_key)
                                        for c in KEYS.c if c.name not in ADDED_KEY_COLUMNS))
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [
            {"key_id": "admin", "key_sha256": hash_key("old-admin"), "admin": True,
             "created": 1.0},
            {"key_id": "kold", "key_sha256": hash_key("old-client"), "admin": False,
             "created": 2.0}])
    engine.dispose()
    store = Store(db_url)
    assert store.key_for("old-admin").roles == set(ROLES)  # type: ignore[union-attr]
    client = store.key_for("old-client")
    assert client is not None and client.roles == {"verify", "identify"}
    assert client.expires is None and client.revoked is None
    store.close()
    Store(db_url).close()  # a second start finds the columns and adds nothing


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_sqlite_file_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "gate.db"
    store = Store(f"sqlite:///{path}")
    store.create_key()
    store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
