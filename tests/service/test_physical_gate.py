"""The physical-accessory study's captures sent to a real gate on 127.0.0.1 (issue 27): the
gate's own decisions equal the study's exact pipeline when both run the same system."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from facerobust.cli import main
from tests.helpers import gate as g


def test_live_gate_decides_the_captures_like_the_exact_pipeline(tmp_path: Path) -> None:
    cfg = g.write_config(tmp_path / "gate.toml", f"sqlite:///{tmp_path / 'gate.db'}",
                         limits='multi_face = "largest"\n')
    with g.running(cfg) as server:
        key = httpx.post(f"{server.url}/keys", headers=g.auth()).json()["key"]
        out = tmp_path / "run"
        assert main(["physical-attack", "--model", g.STAND_IN, "--threshold", "0.5",
                     "--accessory", "eyeglasses", "--goal", "dodging,impersonation",
                     "--attackers", "1", "--photos", "3", "--steps", "2", "--eot-samples", "1",
                     "--heldout", "2", "--dataset", "lfw-demo", "--no-progress",
                     "--gate", server.url, "--gate-key", key, "--gate-admin-key", g.ADMIN,
                     "--out", str(out)]) == 0
        log = httpx.get(f"{server.url}/log", headers=g.auth(),
                        params={"path": "/verify", "limit": 1000}).json()["entries"]
    doc = json.loads((out / "results.json").read_text())
    for row in doc["rows"]:
        assert row["gate"] is not None and row["gate"]["n"] == row["success"]["n"] > 0
        assert row["gate"]["k"] == row["success"]["k"], row  # the same system decides
    assert len(log) == sum(r["gate"]["n"] for r in doc["rows"])  # every capture was sent
    assert "live gate (HTTP)" in (out / "report.html").read_text()


def test_gate_needs_its_keys_before_any_work(tmp_path: Path) -> None:
    assert main(["physical-attack", "--gate", "http://127.0.0.1:9", "--gate-key", "",
                 "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
