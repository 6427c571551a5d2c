"""The real gate on 127.0.0.1 (stand-in model): endpoints, keys, input limits, log, limits."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from facerobust.service.storage import Store
from tests.helpers import gate as g

ALICE = "Alejandro_Toledo"


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width x height`` pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0"))
            + chunk(b"IEND", b""))


def blank_png() -> bytes:
    return bytes(cv2.imencode(".png", np.full((120, 120, 3), 128, np.uint8))[1])


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[g.Server, Path]]:
    tmp = tmp_path_factory.mktemp("gate")
    db = tmp / "gate.db"
    cfg = g.write_config(tmp / "gate.toml", f"sqlite:///{db}",
                         limits="max_pixels = 1000000\nmax_bytes = 400000\n")
    with g.running(cfg) as server:
        r = httpx.post(f"{server.url}/enroll", headers=g.auth(), data={"identity": ALICE},
                       files=[("photos", ("a.jpg", g.demo_photo(ALICE, 1), "image/jpeg"))])
        assert r.status_code == 200, r.text
        yield server, db


def verify(url: str, photo: bytes, *, key: str = g.ADMIN, ctype: str = "image/jpeg",
           claimed: str = ALICE) -> httpx.Response:
    return httpx.post(f"{url}/verify", headers=g.auth(key), data={"claimed_identity": claimed},
                      files={"photo": ("p", photo, ctype)}, timeout=30)


def test_health_and_no_docs_by_default(gate: tuple[g.Server, Path]) -> None:
    url = gate[0].url
    assert httpx.get(f"{url}/healthz").status_code == 200
    for path in ("/openapi.json", "/docs"):
        assert httpx.get(f"{url}{path}").status_code == 401  # no key: nothing at all
        assert httpx.get(f"{url}{path}", headers=g.auth()).status_code == 404  # off


def test_enroll_needs_the_admin_key(gate: tuple[g.Server, Path]) -> None:
    url = gate[0].url
    files = [("photos", ("a.jpg", g.demo_photo("Alvaro_Uribe", 1), "image/jpeg"))]
    r = httpx.post(f"{url}/enroll", data={"identity": "x"}, files=files)
    assert r.status_code == 401 and r.json()["field"] == "Authorization"
    client_key = httpx.post(f"{url}/keys", headers=g.auth()).json()["key"]
    r = httpx.post(f"{url}/enroll", data={"identity": "x"}, files=files,
                   headers=g.auth(client_key))
    assert r.status_code == 403 and "admin" in r.json()["error"]
    r = httpx.post(f"{url}/enroll", data={"identity": "x"}, files=files,
                   headers=g.auth("not-a-key"))
    assert r.status_code == 401 and r.json()["error"] == "unknown API key"


def test_verify_and_identify_decide_at_the_threshold(gate: tuple[g.Server, Path]) -> None:
    url = gate[0].url
    same = verify(url, g.demo_photo(ALICE, 1)).json()
    assert same["decision"] == "accept" and same["score"] == pytest.approx(0.0, abs=1e-5)
    other = verify(url, g.demo_photo("Alvaro_Uribe", 1)).json()
    assert other["decision"] == "reject" and other["score"] > other["threshold"]
    r = httpx.post(f"{url}/identify", headers=g.auth(),
                   files={"photo": ("p", g.demo_photo(ALICE, 1), "image/jpeg")})
    assert r.json()["identity"] == ALICE
    r = httpx.post(f"{url}/identify", headers=g.auth(),
                   files={"photo": ("p", g.demo_photo("Alvaro_Uribe", 1), "image/jpeg")})
    assert r.json()["identity"] == "unknown"


@pytest.mark.parametrize(("photo", "ctype", "status", "needle"), [
    (b"plain text, not an image", "text/plain", 415, "content type"),
    (b"plain text, not an image", "image/jpeg", 415, "not a decodable image"),
    (png_header_only(20000, 20000), "image/png", 413, "megapixels"),
    (b"\xff" * 500_000, "image/jpeg", 413, "larger than the limit"),
    (blank_png(), "image/png", 422, "no face"),
])
def test_bad_photos_get_a_json_4xx_naming_the_field(gate: tuple[g.Server, Path], photo: bytes,
                                                    ctype: str, status: int,
                                                    needle: str) -> None:
    r = verify(gate[0].url, photo, ctype=ctype)
    assert r.status_code == status, r.text
    assert r.json()["field"] == "photo" and needle in r.json()["error"]


def test_missing_fields_and_oversized_bodies(gate: tuple[g.Server, Path]) -> None:
    url = gate[0].url
    r = httpx.post(f"{url}/verify", headers=g.auth(),
                   files={"photo": ("p", g.demo_photo(ALICE, 1), "image/jpeg")})
    assert r.status_code == 422 and r.json()["field"] == "claimed_identity"
    r = httpx.post(f"{url}/verify", headers=g.auth(), data={"claimed_identity": ALICE})
    assert r.status_code == 422 and r.json()["field"] == "photo"
    r = verify(url, g.demo_photo(ALICE, 1), claimed="\x00bad")
    assert r.status_code == 422 and r.json()["field"] == "claimed_identity"
    r = httpx.post(f"{url}/verify", headers=g.auth(), content=b"x" * 5_000_000)
    assert r.status_code == 413 and r.json()["field"] == "Content-Length"
    r = httpx.post(f"{url}/verify", headers=g.auth(), content=iter([b"chunked"]))
    assert r.status_code == 411 and r.json()["field"] == "Content-Length"


def test_every_decision_is_logged(gate: tuple[g.Server, Path]) -> None:
    server, db = gate
    photo = g.demo_photo("Alvaro_Uribe", 2)
    verify(server.url, photo)
    store = Store(f"sqlite:///{db}")
    last = store.decisions()[-1]
    store.close()
    import hashlib

    assert last["endpoint"] == "verify" and last["key_id"] == "admin"
    assert last["claimed_identity"] == ALICE and last["outcome"] == "reject"
    assert last["probe_sha256"] == hashlib.sha256(photo).hexdigest() and last["score"] > 0
    assert verify(server.url, blank_png(), ctype="image/png").status_code == 422
    store = Store(f"sqlite:///{db}")
    last = store.decisions()[-1]
    store.close()
    assert last["outcome"] == "invalid" and "no face" in last["flags"]["error"]


def test_rate_limit_and_lockout(tmp_path: Path) -> None:
    cfg = g.write_config(tmp_path / "gate.toml", f"sqlite:///{tmp_path / 'gate.db'}",
                         limits="key_rate = 0.2\nkey_burst = 3\nmax_rejections = 2\n")
    with g.running(cfg) as server:
        httpx.post(f"{server.url}/enroll", headers=g.auth(), data={"identity": ALICE},
                   files=[("photos", ("a.jpg", g.demo_photo(ALICE, 1), "image/jpeg"))])
        impostor = g.demo_photo("Alvaro_Uribe", 1)
        codes = [verify(server.url, impostor).status_code for _ in range(2)]
        locked = verify(server.url, impostor)  # 2 rejections: the key is locked out
        assert codes == [200, 200] and locked.status_code == 403
        assert "locked out" in locked.json()["error"]
        limited = verify(server.url, impostor)  # the 4th request exceeds the burst of 3
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_configured_detectors_flag_log_and_reject(tmp_path: Path) -> None:
    db = tmp_path / "gate.db"
    cfg = g.write_config(tmp_path / "gate.toml", f"sqlite:///{db}",
                         gate='detectors = ["tests.helpers.gate:bright_detector"]')
    with g.running(cfg) as server:
        httpx.post(f"{server.url}/enroll", headers=g.auth(), data={"identity": ALICE},
                   files=[("photos", ("a.jpg", g.demo_photo(ALICE, 1), "image/jpeg"))])
        dark = cv2.imencode(".png", (cv2.imdecode(np.frombuffer(g.demo_photo(ALICE, 1), np.uint8),
                                                   cv2.IMREAD_COLOR) * 0.4).astype(np.uint8))[1]
        bright = cv2.imencode(".png", np.clip(cv2.imdecode(
            np.frombuffer(g.demo_photo(ALICE, 1), np.uint8), cv2.IMREAD_COLOR) * 1.0 + 120, 0,
            255).astype(np.uint8))[1]
        r_dark = verify(server.url, bytes(dark), ctype="image/png")
        r_bright = verify(server.url, bytes(bright), ctype="image/png")
    assert r_dark.status_code == 200 and r_bright.status_code == 200
    assert r_bright.json()["decision"] == "reject"
    store = Store(f"sqlite:///{db}")
    flags = [d["flags"] for d in store.decisions() if d["endpoint"] == "verify"]
    store.close()
    assert flags[0]["bright_detector.reject"] is False
    assert flags[1]["bright_detector.reject"] is True
