"""Faults on the real gate: kill -9 during an enrollment storm, concurrent enrollments."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx

from facerobust.service.storage import Store
from tests.helpers import gate as g

PEOPLE = ["Alejandro_Toledo", "Alvaro_Uribe", "Abdullah_Gul", "Adrien_Brody"]


def _enroll(url: str, identity: str, photos: list[bytes]) -> httpx.Response:
    files = [("photos", (f"p{i}.jpg", p, "image/jpeg")) for i, p in enumerate(photos)]
    return httpx.post(f"{url}/enroll", headers=g.auth(), data={"identity": identity},
                      files=files, timeout=30)


def test_kill9_during_enrollment_storm_loses_no_acknowledged_enrollment(tmp_path: Path) -> None:
    db = tmp_path / "gate.db"
    cfg = g.write_config(tmp_path / "gate.toml", f"sqlite:///{db}")
    server = g.start(cfg)
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def storm(worker: int) -> None:
        person = PEOPLE[worker % len(PEOPLE)]
        for i in range(200):  # bounded: the kill ends it much earlier
            if stop.is_set():
                return
            name = f"{person}-w{worker}-{i}"
            try:
                r = _enroll(server.url, name, [g.demo_photo(person, 1 + i % 3)])
            except (httpx.HTTPError, OSError):
                return  # the server died mid-request: not acknowledged
            if r.status_code == 200:
                with lock:
                    acked.append(name)

    threads = [threading.Thread(target=storm, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 12 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill9()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acked) >= 12, "the storm did not get going"
    with g.running(cfg) as again:  # restart on the same database
        assert httpx.get(f"{again.url}/healthz").status_code == 200
        store = Store(f"sqlite:///{db}")
        counts = store.gallery_counts()
        logged = {d["claimed_identity"] for d in store.decisions() if d["endpoint"] == "enroll"}
        store.close()
    assert all(counts.get(name) == 1 for name in acked)
    assert set(acked) <= logged
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_concurrent_enrollments_of_one_identity(tmp_path: Path) -> None:
    cfg = g.write_config(tmp_path / "gate.toml", f"sqlite:///{tmp_path / 'gate.db'}")
    photos = [g.demo_photo("Alejandro_Toledo", i) for i in range(1, 9)]
    results: list[int] = []
    with g.running(cfg) as server:
        def one(i: int) -> None:  # each request: its own photo and one every request shares
            r = _enroll(server.url, "Alejandro_Toledo", [photos[0], photos[i]])
            results.append(r.status_code)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(1, 8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        store = Store(f"sqlite:///{tmp_path / 'gate.db'}")
        names, embs = store.templates("Alejandro_Toledo")
        store.close()
    assert results == [200] * 7
    assert len(names) == 8 and len({e.tobytes() for e in embs}) == 8
