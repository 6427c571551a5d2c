"""Attacker-style tests (issue 26): each replays one finding over HTTP against the real gate
on 127.0.0.1 (stand-in model) and asserts that it is closed."""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from facerobust.service.storage import Store, hash_key
from tests.helpers import gate as g
from tests.service.test_audit import raw_post

ALICE = "Alejandro_Toledo"
STRANGER = "Alvaro_Uribe"


def enroll(url: str, name: str = ALICE) -> None:
    r = httpx.post(f"{url}/enroll", headers=g.auth(), data={"identity": name},
                   files=[("photos", ("a.jpg", g.demo_photo(name, 1), "image/jpeg"))])
    assert r.status_code == 200, r.text


def new_key(url: str) -> str:
    return str(httpx.post(f"{url}/keys", headers=g.auth()).json()["key"])


def verify(url: str, key: str, photo: bytes, claimed: str = ALICE) -> httpx.Response:
    return httpx.post(f"{url}/verify", headers=g.auth(key), data={"claimed_identity": claimed},
                      files={"photo": ("p.jpg", photo, "image/jpeg")}, timeout=60)


def identify(url: str, key: str, photo: bytes) -> httpx.Response:
    return httpx.post(f"{url}/identify", headers=g.auth(key),
                      files={"photo": ("p.jpg", photo, "image/jpeg")}, timeout=60)


def decisions(db_url: str) -> list[dict]:
    store = Store(db_url)
    try:
        return store.decisions()
    finally:
        store.close()


def test_identify_is_no_unlimited_oracle(tmp_path: Path) -> None:
    """Finding 1: /identify never counted toward the lock-out and named locked-out
    identities. Now an `unknown` answer counts like a rejection, and a locked-out identity
    is answered `unknown` (logged with the reason)."""
    db = f"sqlite:///{tmp_path / 'gate.db'}"
    cfg = g.write_config(tmp_path / "gate.toml", db, limits="max_rejections = 3\n")
    with g.running(cfg) as server:
        enroll(server.url)
        comber = new_key(server.url)  # combs a photo collection through /identify
        stranger = g.demo_photo(STRANGER, 1)
        answers = [identify(server.url, comber, stranger) for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 403]
        assert answers[0].json()["identity"] == "unknown"
        assert "locked out" in answers[3].json()["error"]
        # an impostor campaign locks Alice out; /identify must not name her any more
        impostor = new_key(server.url)
        assert all(verify(server.url, impostor, stranger).json()["decision"] == "reject"
                   for _ in range(3))
        r = identify(server.url, new_key(server.url), g.demo_photo(ALICE, 1))
        assert r.status_code == 200 and r.json() == {"identity": "unknown"}
    last = decisions(db)[-1]
    assert last["endpoint"] == "identify" and last["outcome"] == "unknown"
    assert last["claimed_identity"] is None
    assert last["flags"]["reason"] == "matched identity is locked out"


@pytest.mark.parametrize(("mode", "client_status", "admin_status"), [
    ("off", 404, 404), ("admin", 403, 200), ("on", 200, 200)])
def test_identify_can_be_disabled_or_admin_only(tmp_path: Path, mode: str, client_status: int,
                                                admin_status: int) -> None:
    cfg = g.write_config(tmp_path / "gate.toml", f"sqlite:///{tmp_path / 'gate.db'}",
                         limits=f'identify = "{mode}"\n')
    with g.running(cfg) as server:
        enroll(server.url)
        photo = g.demo_photo(ALICE, 1)
        client = identify(server.url, new_key(server.url), photo)
        admin = identify(server.url, g.ADMIN, photo)
    assert (client.status_code, admin.status_code) == (client_status, admin_status)
    if client_status != 200:
        assert 'limits.identify = "' + mode + '"' in client.json()["error"]
    if admin_status == 200:
        assert admin.json()["identity"] == ALICE


def test_parallel_requests_never_exceed_the_budget(db_url: str, tmp_path: Path) -> None:
    """Finding 4: at budget - 1 rejections, 10 parallel impostor requests were all evaluated
    (29 rejections against a limit of 20). The check-and-count is now one transaction."""
    budget = 5
    cfg = g.write_config(tmp_path / "gate.toml", db_url,
                         limits=f"max_rejections = {budget}\n")
    with g.running(cfg) as server:
        enroll(server.url)
        key, impostor = new_key(server.url), g.demo_photo(STRANGER, 1)
        assert all(verify(server.url, key, impostor).status_code == 200
                   for _ in range(budget - 1))
        with ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(lambda _: verify(server.url, key, impostor).status_code,
                                  range(10)))
    assert sorted(codes) == [200] + [403] * 9
    rejections = [d for d in decisions(db_url) if d["outcome"] == "reject"]
    assert len(rejections) == budget


def new_key_with_id(url: str) -> tuple[str, str]:
    body = httpx.post(f"{url}/keys", headers=g.auth()).json()
    return str(body["key"]), str(body["key_id"])


def test_no_key_can_lock_a_person_out_for_an_hour(tmp_path: Path) -> None:
    """Finding 2: rejected claims from any keys locked the identity for an hour, even for
    the admin key. Now: per (key, identity) and per key hard limits, per identity only an
    escalating delay (capped), reset by a genuine success; POST /unlock (admin) clears."""
    cfg = g.write_config(tmp_path / "gate.toml", f"sqlite:///{tmp_path / 'gate.db'}",
                         limits="max_rejections = 3\npair_rejections = 2\n"
                                "identity_delay_s = 0.5\nidentity_max_delay_s = 0.5\n")
    with g.running(cfg) as server:
        url = server.url
        enroll(url)
        enroll(url, STRANGER)
        alice, stranger = g.demo_photo(ALICE, 1), g.demo_photo(STRANGER, 1)
        (k1, k1_id), (k2, _), (k3, _) = (new_key_with_id(url) for _ in range(3))
        assert [verify(url, k1, stranger).json()["decision"] for _ in range(2)] == ["reject"] * 2
        pair = verify(url, k1, stranger)  # this key may not claim Alice any more
        assert pair.status_code == 403 and "for this identity" in pair.json()["error"]
        assert verify(url, k1, alice, claimed=STRANGER).status_code == 200  # 3rd failure
        locked = verify(url, k1, stranger, claimed=STRANGER)
        assert locked.status_code == 403 and "this key" in locked.json()["error"]
        assert verify(url, k2, stranger).json()["decision"] == "reject"  # Alice: 3 failures
        delayed = verify(url, k3, stranger)  # a short delay, not an hour
        assert delayed.status_code == 429 and delayed.headers["Retry-After"] == "1"
        assert verify(url, g.ADMIN, alice).json()["decision"] == "accept"  # admin exempt
        assert verify(url, k2, stranger).json()["decision"] == "reject"  # count reset
        assert verify(url, k3, stranger).json()["decision"] == "reject"
        assert verify(url, new_key(url), stranger).json()["decision"] == "reject"
        genuine = new_key(url)
        assert verify(url, genuine, alice).status_code == 429  # the genuine user waits ...
        time.sleep(0.6)
        assert verify(url, genuine, alice).json()["decision"] == "accept"  # ... <= the cap
        # the admin clears a key
        assert httpx.post(f"{url}/unlock", headers=g.auth(genuine), data={"key_id": k1_id}
                          ).status_code == 403
        assert httpx.post(f"{url}/unlock", headers=g.auth()).status_code == 422
        r = httpx.post(f"{url}/unlock", headers=g.auth(), data={"key_id": k1_id})
        assert r.status_code == 200 and r.json()["unlocked"]["key_id"] == k1_id
        assert verify(url, k1, alice, claimed=STRANGER).status_code == 200


def test_unlock_clears_an_identity(tmp_path: Path) -> None:
    cfg = g.write_config(tmp_path / "gate.toml", f"sqlite:///{tmp_path / 'gate.db'}",
                         limits="max_rejections = 2\nidentity_delay_s = 30\n")
    with g.running(cfg) as server:
        url = server.url
        enroll(url)
        keys = [new_key(url) for _ in range(3)]
        for k in keys[:2]:
            assert verify(url, k, g.demo_photo(STRANGER, 1)).json()["decision"] == "reject"
        assert verify(url, keys[2], g.demo_photo(ALICE, 1)).status_code == 429
        assert identify(url, g.ADMIN, g.demo_photo(ALICE, 1)).json()["identity"] == "unknown"
        r = httpx.post(f"{url}/unlock", headers=g.auth(), data={"identity": ALICE})
        assert r.status_code == 200 and r.json()["unlocked"]["identity"] == ALICE
        assert verify(url, keys[2], g.demo_photo(ALICE, 1)).json()["decision"] == "accept"
        assert identify(url, g.ADMIN, g.demo_photo(ALICE, 1)).json()["identity"] == ALICE


def test_inputs_duplicates_lookalike_names_and_health(tmp_path: Path) -> None:
    """Finding 5 (part): duplicate form fields silently took the last; look-alike and
    invisible-character names became separate identities; /healthz described the system
    without a key."""
    db = f"sqlite:///{tmp_path / 'gate.db'}"
    cfg = g.write_config(tmp_path / "gate.toml", db)
    with g.running(cfg) as server:
        url = server.url
        enroll(url)
        alice = g.demo_photo(ALICE, 1)
        r = httpx.post(f"{url}/verify", headers=g.auth(),
                       data={"claimed_identity": [STRANGER, ALICE]},
                       files={"photo": ("p.jpg", alice, "image/jpeg")})
        assert r.status_code == 422 and r.json()["field"] == "claimed_identity"
        assert "sent 2 times" in r.json()["error"]
        r = httpx.post(f"{url}/verify", headers=g.auth(), data={"claimed_identity": ALICE},
                       files=[("photo", ("a.jpg", alice, "image/jpeg")),
                              ("photo", ("b.jpg", alice, "image/jpeg"))])
        assert r.status_code == 422 and r.json()["field"] == "photo"
        # variants (full-width, case) are the enrolled identity, not new ones
        variant = "\uff21" + ALICE[1:].upper()  # FULLWIDTH A + upper case
        photos = [("photos", ("b.jpg", g.demo_photo(ALICE, 2), "image/jpeg"))]
        r = httpx.post(f"{url}/enroll", headers=g.auth(), data={"identity": variant},
                       files=photos)
        assert r.status_code == 409 and r.json()["field"] == "mode"  # no silent append
        r = httpx.post(f"{url}/enroll", headers=g.auth(),
                       data={"identity": variant, "mode": "append"}, files=photos)
        assert r.status_code == 200 and r.json()["identity"] == ALICE
        r = verify(url, g.ADMIN, alice, claimed=ALICE.lower())
        assert r.json() == {**r.json(), "decision": "accept", "claimed_identity": ALICE}
        for bad in (ALICE[:4] + "\u200b" + ALICE[4:], "\u202e" + ALICE, ALICE + "\u3164"):
            r = verify(url, g.ADMIN, alice, claimed=bad)
            assert r.status_code == 422 and r.json()["field"] == "claimed_identity"
            assert "invisible or control character U+" in r.json()["error"]
        anonymous = httpx.get(f"{url}/healthz").json()
        described = httpx.get(f"{url}/healthz", headers=g.auth(new_key(url))).json()
    assert anonymous == {"status": "ok"}
    assert described["status"] == "ok" and len(described) > 1
    store = Store(db)
    assert store.identities() == [ALICE]
    store.close()


def key_with(url: str, **form: str) -> dict:
    r = httpx.post(f"{url}/keys", headers=g.auth(), data=form)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_keys_have_roles_expiry_and_revocation(tmp_path: Path) -> None:
    """Finding 3 (keys): client keys could not be revoked or expire and every key could do
    everything but admin. Now keys carry roles and an expiry; DELETE /keys/{id} revokes at
    once, also for a second gate instance sharing the database."""
    db = f"sqlite:///{tmp_path / 'gate.db'}"
    cfg = g.write_config(tmp_path / "gate.toml", db)
    with g.running(cfg) as server, g.running(cfg) as other:
        url = server.url
        enroll(url)
        alice = g.demo_photo(ALICE, 1)
        client = key_with(url)
        assert client["role"] == "verify,identify" and client["expires"] is None
        assert verify(other.url, client["key"], alice).json()["decision"] == "accept"
        r = httpx.delete(f"{url}/keys/{client['key_id']}", headers=g.auth())
        assert r.status_code == 200 and r.json() == {"revoked": client["key_id"]}
        for base in (url, other.url):  # refused at once, on both instances
            r = verify(base, client["key"], alice)
            assert r.status_code == 401 and r.json()["error"] == "API key revoked"
        assert httpx.delete(f"{url}/keys/{client['key_id']}", headers=g.auth()
                            ).status_code == 404
        assert httpx.delete(f"{url}/keys/admin", headers=g.auth()).status_code == 422

        short = key_with(url, expires_in_s="0.001")  # expired before it is used
        assert time.time() - 60 < short["expires"] <= time.time()
        r = identify(url, short["key"], alice)
        assert r.status_code == 401 and r.json()["error"] == "API key expired"
        assert httpx.post(f"{url}/keys", headers=g.auth(), data={
            "expires_in_s": "-1"}).json()["field"] == "expires_in_s"

        verifier = key_with(url, role="verify")
        r = httpx.post(f"{url}/enroll", headers=g.auth(verifier["key"]),
                       data={"identity": STRANGER},
                       files=[("photos", ("a.jpg", g.demo_photo(STRANGER, 1), "image/jpeg"))])
        assert r.status_code == 403 and "enroll or admin role" in r.json()["error"]
        r = identify(url, verifier["key"], alice)
        assert r.status_code == 403 and "identify role" in r.json()["error"]
        r = httpx.post(f"{url}/keys", headers=g.auth(verifier["key"]))
        assert r.status_code == 403 and "admin role" in r.json()["error"]
        enroller = key_with(url, role="enroll")
        r = httpx.post(f"{url}/enroll", headers=g.auth(enroller["key"]),
                       data={"identity": STRANGER},
                       files=[("photos", ("a.jpg", g.demo_photo(STRANGER, 1), "image/jpeg"))])
        assert r.status_code == 200
        assert verify(url, enroller["key"], alice).status_code == 403
        bad = httpx.post(f"{url}/keys", headers=g.auth(), data={"role": "root"})
        assert bad.status_code == 422 and bad.json()["field"] == "role"

        listing = httpx.get(f"{url}/keys", headers=g.auth())
        assert httpx.get(f"{url}/keys", headers=g.auth(enroller["key"])).status_code == 403
    keys = {k["key_id"]: k for k in listing.json()["keys"]}
    assert keys[client["key_id"]]["revoked"] is not None
    assert keys[enroller["key_id"]]["role"] == "enroll" and keys[enroller["key_id"]]["last_used"]
    assert keys["admin"]["role"] == "admin,enroll,verify,identify"
    for secret in (client["key"], short["key"], verifier["key"], enroller["key"], g.ADMIN):
        assert secret not in listing.text and hash_key(secret) not in listing.text
    logged = [d["outcome"] for d in decisions(db) if d["endpoint"] == "keys"]
    assert logged.count("key-created") == 4 and logged.count("key-revoked") == 1


def test_key_guessing_is_throttled_per_address(tmp_path: Path) -> None:
    """Finding 3 (guessing): 300 random-key guesses took 1 s with no throttling. Now failed
    authentication drains a bucket per client address: 429 after the burst, and then even a
    right key is not checked (the answer would tell the guess apart)."""
    cfg = g.write_config(tmp_path / "gate.toml", f"sqlite:///{tmp_path / 'gate.db'}",
                         limits="auth_fail_rate = 0.01\nauth_fail_burst = 5\n")
    with g.running(cfg) as server:
        codes = [httpx.post(f"{server.url}/identify", headers=g.auth(secrets.token_urlsafe(24)),
                            files={"photo": ("p.jpg", b"x", "image/jpeg")}).status_code
                 for _ in range(8)]
        late = httpx.get(f"{server.url}/keys", headers=g.auth())
    assert codes == [401] * 5 + [429] * 3
    assert late.status_code == 429 and int(late.headers["Retry-After"]) >= 1
    assert "failed authentications" in late.json()["error"]


def two_faces() -> bytes:
    """Two demo photos side by side: two faces of the same size."""
    left, right = (cv2.imdecode(np.frombuffer(g.demo_photo(n, 1), np.uint8), cv2.IMREAD_COLOR)
                   for n in (ALICE, STRANGER))
    return bytes(cv2.imencode(".jpg", np.hstack([left, right]))[1])


def reencoded(ext: str) -> bytes:
    """Alice's photo in another format (to be sent under a JPEG/PNG label)."""
    img = cv2.imdecode(np.frombuffer(g.demo_photo(ALICE, 1), np.uint8), cv2.IMREAD_COLOR)
    return bytes(cv2.imencode(ext, img)[1])


def test_input_handling_closes_finding_5(tmp_path: Path) -> None:
    """Finding 5: the body was parsed before the key was checked; any decodable format under
    a JPEG label was decoded; re-enrolling silently appended; look-alike names became new
    identities; a two-face photo silently used the largest face; /docs was public."""
    db = f"sqlite:///{tmp_path / 'gate.db'}"
    cfg = g.write_config(tmp_path / "gate.toml", db)
    with g.running(cfg) as server:
        url = server.url
        enroll(url)
        # no key, a 1 MB body announced and not sent: answered at once, body never read
        started = time.monotonic()
        assert raw_post(url, {"Content-Length": "1000000",
                              "Content-Type": "multipart/form-data; boundary=x"}) == 401
        assert time.monotonic() - started < 5
        for ext, label in ((".bmp", "image/jpeg"), (".webp", "image/png"),
                           (".tiff", "image/jpeg")):
            r = httpx.post(f"{url}/verify", headers=g.auth(), data={"claimed_identity": ALICE},
                           files={"photo": ("p", reencoded(ext), label)})
            assert r.status_code == 415, (ext, r.text)
            assert f"a {ext[1:].upper()} image by its content" in r.json()["error"]
        r = verify(url, g.ADMIN, two_faces())
        assert r.status_code == 422 and "2 faces of similar size" in r.json()["error"]
        for bad, why in (("\u0410lejandro_Toledo", "mixes letters"),):  # Cyrillic A
            r = verify(url, g.ADMIN, g.demo_photo(ALICE, 1), claimed=bad)
            assert r.status_code == 422 and why in r.json()["error"]
        r = httpx.post(f"{url}/enroll", headers=g.auth(), data={"identity": "Pepe"},
                       files=[("photos", ("s.jpg", g.demo_photo(STRANGER, 1), "image/jpeg"))])
        assert r.status_code == 200  # then its all-Cyrillic look-alike "Рере" is refused
        r = verify(url, g.ADMIN, g.demo_photo(ALICE, 1), claimed="\u0420\u0435\u0440\u0435")
        assert r.status_code == 422 and "looks like the enrolled identity 'Pepe'" in r.text
        two = [("photos", (f"{i}.jpg", g.demo_photo(ALICE, i), "image/jpeg")) for i in (2, 3)]
        r = httpx.post(f"{url}/enroll", headers=g.auth(),
                       data={"identity": ALICE, "mode": "replace"}, files=two)
        assert r.status_code == 200 and r.json()["mode"] == "replace"
        listed = httpx.get(f"{url}/identities", headers=g.auth()).json()["identities"]
        client = g.auth(new_key(url))
        assert httpx.get(f"{url}/identities", headers=client).status_code == 403
        assert httpx.delete(f"{url}/identities/Pepe", headers=client).status_code == 403
        gone = httpx.delete(f"{url}/identities/pepe", headers=g.auth()).json()
        assert gone == {"deleted": "Pepe", "templates": 1}
        assert httpx.delete(f"{url}/identities/Pepe", headers=g.auth()).status_code == 404
        spoofed = httpx.get(f"{url}/keys", headers={"X-Forwarded-For": "203.0.113.9"})
        log = httpx.get(f"{url}/log", headers=g.auth(), params={"limit": 1000}).json()
        assert httpx.get(f"{url}/openapi.json", headers=g.auth()).status_code == 404
    assert sorted(listed, key=str) == [{"identity": ALICE, "templates": 2},
                                       {"identity": "Pepe", "templates": 1}]
    assert spoofed.status_code == 401  # and the untrusted forwarded address is not believed
    assert log["entries"][-1]["client"] == "127.0.0.1"


def test_trusted_proxy_docs_multi_face_largest_and_a_generated_admin_key(
        tmp_path: Path) -> None:
    cfg = g.write_config(tmp_path / "gate.toml", f"sqlite:///{tmp_path / 'gate.db'}",
                         gate='docs = true\ntrusted_proxies = ["127.0.0.1"]\n',
                         limits='multi_face = "largest"\n')
    server = g.start(cfg, admin="", stderr=tmp_path / "stderr.txt")
    try:
        text = (tmp_path / "stderr.txt").read_text()
        admin = text.split("shown only now:")[1].split()[0]
        url = server.url
        assert len(admin) >= 43 and "openapi" in httpx.get(f"{url}/openapi.json").text
        r = httpx.get(f"{url}/keys", headers={"X-Forwarded-For": "198.51.100.7, 127.0.0.1"})
        assert r.status_code == 401
        admin_auth = {"Authorization": f"Bearer {admin}"}
        assert httpx.post(f"{url}/enroll", headers=admin_auth, data={"identity": ALICE},
                          files=[("photos", ("a.jpg", g.demo_photo(ALICE, 1), "image/jpeg"))]
                          ).status_code == 200
        r = httpx.post(f"{url}/verify", headers=admin_auth, data={"claimed_identity": ALICE},
                       files={"photo": ("p.jpg", two_faces(), "image/jpeg")})
        assert r.status_code == 200  # the largest face decides under "largest"
        assert httpx.get(f"{url}/keys", headers=g.auth()).status_code == 401  # old key: no
        log = httpx.get(f"{url}/log", headers=admin_auth, params={"status": 401}).json()
    finally:
        server.stop()
    assert log["entries"][0]["client"] == "198.51.100.7"
