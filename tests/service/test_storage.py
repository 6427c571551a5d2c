"""The gate's store on SQLite and PostgreSQL: gallery, hashed keys, decision log, concurrency."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import sqlalchemy as sa

from facerobust.service.storage import KEYS, Store, hash_key


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
