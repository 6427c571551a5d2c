"""``attack-gate`` through a ``[remote]`` description: a CompreFace-style stub (two base64
images in a JSON body, an API-key header, a similarity deep in the answer) and the parser's
errors."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from facerobust.cli import main
from facerobust.eval.results_gate import GateAttackResults
from facerobust.service.remote import json_path, load_remote, own_gate, parse_remote
from tests.helpers import gate as g

KEY = "stub-secret-key"
THRESHOLD = 0.97  # similarity


def similarity(a: bytes, b: bytes) -> float:
    """Cosine similarity of the centred 8x8 gray thumbnails: deterministic and pixel-bound."""
    def thumb(data: bytes) -> np.ndarray:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        v = cv2.resize(img, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
        return v - v.mean()
    x, y = thumb(a), thumb(b)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-12))


class Stub(BaseHTTPRequestHandler):
    calls: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if self.headers.get("x-api-key") != KEY:
            return self._send(401, {"message": "bad key"})
        if self.path != "/api/v1/verification/verify":
            return self._send(404, {"message": "no such endpoint"})
        s = similarity(base64.b64decode(body["source_image"]),
                       base64.b64decode(body["target_image"]))
        Stub.calls.append({"fields": sorted(body), "similarity": s})
        self._send(200, {"result": [{"face_matches": [{"similarity": round(s, 6)}]}]})

    def _send(self, status: int, doc: dict[str, Any]) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def stub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Stub.calls = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def remote_toml(path: Path, url: str) -> Path:
    path.write_text(f"""[remote]
url = "{url}/api/v1/verification/verify"
body = "json"
probe_field = "source_image"
reference_field = "target_image"
auth_header = "x-api-key"
auth_env = "STUB_API_KEY"
score = "result.0.face_matches.0.similarity"
score_kind = "similarity"
threshold = {THRESHOLD}
""")
    return path


def test_square_through_a_compreface_style_api(stub: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUB_API_KEY", KEY)
    desc = remote_toml(tmp_path / "remote.toml", stub)
    assert main(["attack-gate", str(desc), "--dataset", "lfw-demo", "--n", "1",
                 "--queries", "4", "--eps", "8/255", "--no-progress",
                 "--out", str(tmp_path / "run")]) == 0
    res = GateAttackResults.from_dict(json.loads((tmp_path / "run/results.json").read_text()))
    sample = res.samples[0]
    assert res.scores_used and sample.queries == 4 and len(res.samples) == 1
    assert all(c["fields"] == ["source_image", "target_image"] for c in Stub.calls)
    # the usable-pair check plus the 4 attack queries; scores are 1 - similarity
    assert len(Stub.calls) == 5
    assert sample.clean_score == pytest.approx(1.0 - Stub.calls[1]["similarity"], abs=1e-6)
    assert sample.best_score is not None and sample.best_score <= sample.clean_score
    assert KEY not in (tmp_path / "run/results.json").read_text()


def test_a_wrong_key_is_a_clear_error(stub: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("STUB_API_KEY", "wrong")
    desc = remote_toml(tmp_path / "remote.toml", stub)
    assert main(["attack-gate", str(desc), "--dataset", "lfw-demo", "--n", "1",
                 "--queries", "4", "--no-progress", "--out", str(tmp_path / "run")]) != 0
    assert "refused the request: 401" in capsys.readouterr().err


def test_our_gate_is_one_description() -> None:
    api = own_gate("http://127.0.0.1:8000/", "k", "admin")
    assert api.url == "http://127.0.0.1:8000/verify" and api.auth_value == "Bearer k"
    assert api.enroll is not None and api.enroll.auth_value == "Bearer admin"
    assert api.identity_field == "claimed_identity" and api.score_kind == "distance"


@pytest.mark.parametrize("text, match", [
    ('url = "http://x"\nbody = "xml"', r"remote\.body must be one of multipart, json"),
    ('url = "ftp://x"\ndecision = "d"\nreference_field = "r"', r"remote\.url must start"),
    ('url = "http://x"\nreference_field = "r"', r"set decision .* or score with threshold"),
    ('url = "http://x"\ndecision = "d"', r"set reference_field .* or identity_field with"),
    ('url = "http://x"\ndecision = "d"\nreference_field = "r"\nverb = "GET"',
     r"unknown key remote\.verb"),
    ('url = "http://x"\ndecision = "d"\nreference_field = "r"\nthreshold = "high"',
     r"remote\.threshold must be a float"),
])
def test_bad_descriptions_name_the_key(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "r.toml"
    path.write_text(f"[remote]\n{text}\n")
    with pytest.raises(ValueError, match=match) as err:
        load_remote(path)
    assert str(path) in str(err.value)
    with pytest.raises(ValueError, match="url"):
        parse_remote({"decision": "d"})


def test_json_path_reads_nested_answers() -> None:
    doc = {"result": [{"face_matches": [{"similarity": 0.5}]}], "ok": True}
    assert json_path(doc, "result.0.face_matches.0.similarity") == 0.5
    assert json_path(doc, "ok") is True
    with pytest.raises(KeyError, match="result.1"):
        json_path(doc, "result.1.x")


OWN_GATE = """[remote]
url = "{url}/verify"
probe_field = "photo"
identity_field = "claimed_identity"
auth_value = "Bearer {key}"
decision = "decision"
accept_value = "accept"
score = "score"
health_url = "{url}/healthz"
threshold_path = "threshold"

[remote.enroll]
url = "{url}/enroll"
identity_field = "identity"
photo_field = "photos"
auth_value = "Bearer {admin}"
mode_field = "mode"
"""


def test_our_gate_through_its_description_gives_the_native_figures(tmp_path: Path) -> None:
    cfg = g.write_config(tmp_path / "gate.toml", f"sqlite:///{tmp_path / 'gate.db'}")
    with g.running(cfg) as server:
        keys = [httpx.post(f"{server.url}/keys", headers=g.auth()).json()["key"]
                for _ in range(2)]
        common = ["--dataset", "lfw-demo", "--n", "1", "--queries", "6", "--eps", "8/255",
                  "--no-progress"]
        assert main(["attack-gate", server.url, "--key", keys[0], "--admin-key", g.ADMIN,
                     *common, "--out", str(tmp_path / "native")]) == 0
        desc = tmp_path / "own.toml"
        desc.write_text(OWN_GATE.format(url=server.url, key=keys[1], admin=g.ADMIN))
        assert load_remote(desc) == own_gate(server.url, keys[1], g.ADMIN)
        assert main(["attack-gate", str(desc), *common, "--out", str(tmp_path / "remote")]) == 0
    native, remote = (GateAttackResults.from_dict(json.loads(
        (tmp_path / run / "results.json").read_text())).samples[0]
        for run in ("native", "remote"))
    assert (native.queries, native.clean_score, native.best_score) == \
        (remote.queries, remote.clean_score, remote.best_score)
    assert native.queries_to_success == remote.queries_to_success
