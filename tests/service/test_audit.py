"""Issue 26, item 3: every request outcome is audited in a hash chain; GET /log; `facerobust
gate verify-log` names the first broken entry. Real gate on 127.0.0.1, stand-in model."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from facerobust.service import audit_log
from facerobust.service.audit_log import AuditRecord
from facerobust.service.storage import Store
from facerobust.service.tables import AUDIT
from tests.helpers import gate as g

ALICE = "Alejandro_Toledo"
ROOT = Path(__file__).resolve().parents[2]


def verify_log(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "facerobust.cli", "gate", "verify-log", *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={"PYTHONPATH": f"{ROOT / 'src'}", "PATH": "/usr/bin:/bin"})


class Status:
    """A raw answer's status where the list below expects a response."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


def raw_post(url: str, headers: dict[str, str], path: str = "/verify", body: bytes = b"x",
             timeout: float = 10.0) -> int:
    """POST over a bare socket, so the headers may lie (a Content-Length larger than the
    body sent); returns the status the gate answers without waiting for the rest."""
    host, port = url.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}",
             *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall("\r\n".join(lines).encode() + body)
        head = sock.recv(4096).decode("latin-1")
    return int(head.split()[1])


def photo_files(ctype: str = "image/jpeg", name: str = ALICE) -> dict:
    return {"photo": ("p.jpg", g.demo_photo(name, 1), ctype)}


def campaign(url: str) -> None:
    """One request of each refusal kind, and each admin action."""
    enroll = {"identity": ALICE}
    files = [("photos", ("a.jpg", g.demo_photo(ALICE, 1), "image/jpeg"))]
    assert httpx.post(f"{url}/enroll", headers=g.auth(), data=enroll, files=files
                      ).status_code == 200
    key = httpx.post(f"{url}/keys", headers=g.auth()).json()
    client = g.auth(key["key"])
    expect = [
        (httpx.post(f"{url}/verify", data={"claimed_identity": ALICE}, files=photo_files()),
         401),
        (httpx.post(f"{url}/verify", headers=g.auth("wrong-key"),
                    data={"claimed_identity": ALICE}, files=photo_files()), 401),
        (httpx.post(f"{url}/enroll", headers=client, data=enroll, files=files), 403),
        (Status(raw_post(url, {**client, "Content-Length": "999999999"})), 413),
        (httpx.post(f"{url}/verify", headers=client, data={"claimed_identity": ALICE},
                    files=photo_files("text/plain")), 415),
        (httpx.post(f"{url}/verify", headers=client, data={"claimed_identity": "\u200bX"},
                    files=photo_files()), 422),
        (httpx.post(f"{url}/verify", headers=client, data={"claimed_identity": "alejandro_TOLEDO"},
                    files=photo_files()), 200),
        (httpx.post(f"{url}/verify", headers=client, data={"claimed_identity": ALICE},
                    files=photo_files()), 429),  # key_burst = 2, a slow refill
        (httpx.post(f"{url}/unlock", headers=g.auth(), data={"identity": ALICE}), 200),
        (httpx.delete(f"{url}/keys/{key['key_id']}", headers=g.auth()), 200),
        (httpx.get(f"{url}/log", headers=client), 401),  # revoked
    ]
    assert [r.status_code for r, _ in expect] == [s for _, s in expect]


def test_every_outcome_is_audited_in_a_verifiable_chain(tmp_path: Path) -> None:
    db = tmp_path / "gate.db"
    cfg = g.write_config(tmp_path / "gate.toml", f"sqlite:///{db}",
                         limits="key_rate = 0.001\nkey_burst = 2\n")
    with g.running(cfg) as server:
        campaign(server.url)
        entries = httpx.get(f"{server.url}/log", headers=g.auth(),
                            params={"limit": 1000}).json()["entries"]
        page = httpx.get(f"{server.url}/log", headers=g.auth(),
                         params={"limit": 3, "after_id": 2}).json()
        only = httpx.get(f"{server.url}/log", headers=g.auth(), params={"status": 401}).json()
    statuses = Counter(e["status"] for e in entries)
    refused = {s: statuses[s] for s in (401, 403, 413, 415, 422, 429)}
    assert refused == {401: 3, 403: 1, 413: 1, 415: 1, 422: 1, 429: 1}
    outcomes = {e["outcome"] for e in entries}
    assert {"enrolled", "key-created", "key-revoked", "unlocked", "accept"} <= outcomes
    assert all(e["client"] == "127.0.0.1" for e in entries)
    no_key = [e for e in entries if e["status"] == 401]
    assert no_key[0]["key_id"] == "none" and "missing API key" in no_key[0]["reason"]
    variant = next(e for e in entries if e["identity_sent"] == "alejandro_TOLEDO")
    assert variant["identity"] == ALICE and variant["outcome"] == "accept"
    assert [e["id"] for e in page["entries"]] == [3, 4, 5] and page["next_after_id"] == 5
    assert {e["status"] for e in only["entries"]} == {401}
    assert all(e["prev_hash"] == p["hash"] for p, e in zip(entries, entries[1:], strict=False))
    ok = verify_log("--db", f"sqlite:///{db}")
    assert ok.returncode == 0 and f"{len(entries) + 3} entries" in ok.stdout, ok.stderr
    head = ok.stdout.split()[-1]
    # an edited row breaks the chain at that row
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(AUDIT.update().where(AUDIT.c.id == 4).values(reason="nothing happened"))
    bad = verify_log("--db", f"sqlite:///{db}")
    assert bad.returncode == 1 and "BROKEN at entry 4" in bad.stderr and "edited" in bad.stderr
    with engine.begin() as conn:  # deleting the tail passes alone, not against the head
        conn.execute(AUDIT.delete().where(AUDIT.c.id >= 4))
    assert verify_log("--db", f"sqlite:///{db}").returncode == 0
    cut = verify_log("--db", f"sqlite:///{db}", "--head", head)
    assert cut.returncode == 1 and "head hash is not in the chain" in cut.stderr
    engine.dispose()


def test_a_deleted_middle_row_is_named(db_url: str) -> None:
    store = Store(db_url)
    try:
        for i in range(5):
            audit_log.append(store, AuditRecord("POST", "/verify", f"10.0.0.{i}"), 200)
        with store.engine.begin() as conn:
            conn.execute(AUDIT.delete().where(AUDIT.c.id == 3))
        report = audit_log.verify_chain(store)
    finally:
        store.close()
    assert (report.broken_id, report.rows) == (4, 2) and "rows missing" in report.problem


def test_parallel_appends_keep_one_chain(db_url: str) -> None:
    """Appends from many threads (as from several gate instances) never fork the chain."""
    store = Store(db_url)
    try:
        def add(i: int) -> int:
            return audit_log.append(store, AuditRecord("POST", "/verify", f"c{i}"), 200)

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(add, range(80)))
        report = audit_log.verify_chain(store)
    finally:
        store.close()
    assert sorted(ids) == list(range(1, 81))
    assert report.ok and report.rows == 80


def test_log_needs_the_admin_key_and_checks_its_limit(tmp_path: Path) -> None:
    cfg = g.write_config(tmp_path / "gate.toml", f"sqlite:///{tmp_path / 'gate.db'}")
    with g.running(cfg) as server:
        client = httpx.post(f"{server.url}/keys", headers=g.auth()).json()["key"]
        assert httpx.get(f"{server.url}/log", headers=g.auth(client)).status_code == 403
        r = httpx.get(f"{server.url}/log", headers=g.auth(), params={"limit": 5000})
    assert r.status_code == 422 and "limit must be 1-1000" in r.json()["error"]


def test_verify_log_refuses_a_missing_database(tmp_path: Path) -> None:
    r = verify_log("--db", f"sqlite:///{tmp_path / 'nope.db'}")
    assert r.returncode == 2 and "no gate database" in r.stderr


@pytest.mark.parametrize("flag", ["--db", "--config"])
def test_verify_log_reads_the_gate_config_or_url(tmp_path: Path, flag: str) -> None:
    db = tmp_path / "gate.db"
    Store(f"sqlite:///{db}").close()
    cfg = g.write_config(tmp_path / "gate.toml", f"sqlite:///{db}")
    r = verify_log(flag, str(cfg) if flag == "--config" else f"sqlite:///{db}")
    assert r.returncode == 0 and "0 entries" in r.stdout
