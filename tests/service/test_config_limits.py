"""Gate config validation, token buckets, engine URLs, and two gates sharing one database."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest

from facerobust.service.budget import Policy
from facerobust.service.config import key_bits, load_gate_config, parse_gate_config
from facerobust.service.limits import RateLimiter, time_at_rate
from facerobust.service.storage import make_engine
from tests.helpers import gate as g

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_is_valid() -> None:
    cfg = load_gate_config(ROOT / "examples/gate.toml")
    assert cfg.gate.model == "dlib-resnet" and cfg.limits.max_rejections > 0


@pytest.mark.parametrize(("doc", "match"), [
    ({"gate": {"modle": "x"}}, r"unknown key gate\.modle"),
    ({"limits": {"key_rate": -1}}, r"limits\.key_rate must be a number >= 0"),
    ({"gate": {"defense": "jpeg:q=500"}}, r"gate\.defense"),
    ({"gate": {"detector": "eyes"}}, "unknown detector"),
    ({"gate": {"detectors": ["nocolon"]}}, r"gate\.detectors"),
    ({"limits": {"content_types": []}}, "content_types is empty"),
    ({"extra": {}}, r"unknown table \[extra\]"),
    ({"limits": {"identity_max_delay_s": 0.5}}, r"identity_max_delay_s must be >= limits\."),
    ({"limits": {"identify": "maybe"}}, r"limits\.identify must be one of on, off, admin"),
])
def test_bad_configs_name_the_key(doc: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_gate_config(doc)


@pytest.mark.parametrize("key", ["short", "a" * 64, "ab" * 32, "0123456789abcdef" * 1,
                                 "correct-horse-1"])
def test_admin_key_needs_128_bits(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACEROBUST_GATE_ADMIN_KEY", raising=False)
    cfg = parse_gate_config({"gate": {"admin_key": key}})
    with pytest.raises(ValueError, match="it needs 128"):
        _ = cfg.admin_key


def test_random_admin_keys_pass_and_an_unset_one_is_generated(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACEROBUST_GATE_ADMIN_KEY", raising=False)
    for _ in range(200):
        for key in (secrets.token_urlsafe(16), secrets.token_hex(16), secrets.token_hex(32)):
            assert key_bits(key) >= 128, key
    assert parse_gate_config({}).admin_key == ""  # the server generates one (tested over HTTP)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_gate_config(tmp_path / "missing.toml")


def test_token_bucket() -> None:
    lim = RateLimiter(rate=2.0, burst=3)
    assert [lim.take("k", now=0.0) for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]
    assert lim.take("other", now=0.0) == 0.0  # buckets are per key
    assert lim.take("k", now=1.0) == 0.0  # refilled
    assert RateLimiter(rate=0.0, burst=1).take("k") == 0.0  # unlimited
    assert time_at_rate(120, rate=2.0, burst=20) == 50.0
    with pytest.raises(ValueError, match="burst >= 1"):
        RateLimiter(rate=1.0, burst=0)


def test_identity_delays_escalate_up_to_the_cap() -> None:
    policy = Policy(limit=3, pair_limit=3, window_s=3600, delay_s=1.0, max_delay_s=10.0)
    assert [policy.delay(n) for n in (0, 2, 3, 4, 5, 6, 99)] == [0, 0, 1, 2, 4, 8, 10]
    assert Policy(0, 0, 3600, 1.0, 10.0).delay(99) == 0.0  # no budget, no delays


def test_engine_urls() -> None:
    assert make_engine("postgresql://u@h/db").dialect.driver == "psycopg"
    with pytest.raises(ValueError, match="not a valid SQLAlchemy URL"):
        make_engine("not a url")


def test_two_gates_share_one_database(db_url: str, tmp_path: Path) -> None:
    """Enroll on one gate instance, verify on another (SQLite WAL and PostgreSQL)."""
    cfg = g.write_config(tmp_path / "gate.toml", db_url)
    with g.running(cfg) as first, g.running(cfg) as second:
        r = httpx.post(f"{first.url}/enroll", headers=g.auth(), data={"identity": "Al"},
                       files=[("photos", ("a.jpg", g.demo_photo("Alvaro_Uribe"), "image/jpeg"))])
        assert r.status_code == 200
        r = httpx.post(f"{second.url}/verify", headers=g.auth(), data={"claimed_identity": "Al"},
                       files={"photo": ("p.jpg", g.demo_photo("Alvaro_Uribe"), "image/jpeg")})
        assert r.json()["decision"] == "accept"
