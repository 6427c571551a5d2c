"""The black-box HTTP client and the photo-space study against the real gate (stand-in)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from facerobust.cli import main
from facerobust.eval.results_gate import LookalikeResults
from facerobust.service.blackbox import GateAttackResults
from facerobust.service.config import parse_gate_config
from facerobust.service.lookalike import time_to_query
from facerobust.service.photo_study import PhotoStudyResults
from facerobust.service.summary import median_ci
from tests.helpers import gate as g


def _key(url: str) -> str:
    return str(httpx.post(f"{url}/keys", headers=g.auth()).json()["key"])


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["attack-gate", "--help"])
    assert done.value.code == 0 and "--queries" in capsys.readouterr().out


def test_square_and_hsj_over_http_and_the_lockout(tmp_path: Path) -> None:
    cfg = g.write_config(tmp_path / "gate.toml", f"sqlite:///{tmp_path / 'gate.db'}",
                         limits="max_rejections = 12\n")
    with g.running(cfg) as server:
        key = _key(server.url)
        base = [server.url, "--key", key, "--admin-key", g.ADMIN, "--n", "1",
                "--eps", "4/255,8/255", "--no-progress", "--gate-config", str(cfg)]
        assert main(["attack-gate", *base, "--attack", "square", "--queries", "5",
                     "--out", str(tmp_path / "sq")]) == 0
        res = GateAttackResults.from_dict(json.loads((tmp_path / "sq/results.json").read_text()))
        sample = res.samples[0]
        assert res.scores_used and len(res.budgets) == 2 and res.budgets[0].success.n == 1
        assert sample.queries == 10 and not sample.locked_out  # 5 per budget
        assert "success before lock-out" in (tmp_path / "sq/report.html").read_text()
        assert sample.clean_score is not None and sample.best_score <= sample.clean_score
        # the key has 10 rejections: HSJ runs into the lock-out (12) and stops
        assert main(["attack-gate", *base, "--attack", "hsj", "--queries", "40",
                     "--out", str(tmp_path / "hsj")]) == 0
        res = GateAttackResults.from_dict(json.loads((tmp_path / "hsj/results.json")
                                                     .read_text()))
        assert not res.scores_used and res.samples[0].locked_out
        first = (tmp_path / "hsj/results.json").read_bytes()
        # the same command again reuses the finished study: no query reaches the locked gate
        assert main(["attack-gate", *base, "--attack", "hsj", "--queries", "40",
                     "--out", str(tmp_path / "hsj")]) == 0
        assert (tmp_path / "hsj/results.json").read_bytes() == first


def test_photo_study_through_the_gate(tmp_path: Path) -> None:
    cfg = g.write_config(tmp_path / "gate.toml", f"sqlite:///{tmp_path / 'gate.db'}")
    with g.running(cfg) as server:
        assert main(["gate-photo-attack", server.url, "--key", _key(server.url), "--admin-key",
                     g.ADMIN, "--model", g.STAND_IN, "--n", "1", "--steps", "2", "--eot", "2",
                     "--eps", "8/255", "--formats", "png", "--no-progress",
                     "--out", str(tmp_path / "ph")]) == 0
    res = PhotoStudyResults.from_dict(json.loads((tmp_path / "ph/results.json").read_text()))
    assert [c.method for c in res.cells] == ["chip", "photo", "photo+eot"]
    assert all(c.gate_success.n == 1 and c.in_memory_success.n == 1 for c in res.cells)
    assert "photo+eot" in (tmp_path / "ph/report.html").read_text()


def test_median_ci_brackets_the_median() -> None:
    med, ci = median_ci([5, 1, 9, 3, 7, 11, 13, 2, 4, 6])
    assert med == 5.5 and ci is not None and ci[0] <= med <= ci[1]
    assert median_ci([]) == (None, None)


def _lookalike_gate(path: Path, threshold: float, limits: str) -> Path:
    path.write_text(f'[gate]\nmodel = "{g.STAND_IN}"\nthreshold = {threshold}\n'
                    f'expose_scores = true\ndatabase = "sqlite:///{path.parent / "gate.db"}"\n'
                    f"[limits]\n{limits}\n")
    return path


@pytest.mark.parametrize(("threshold", "limits"), [(1e6, ""), (1e-9, "max_rejections = 3\n")])
def test_lookalike_search_through_identify(tmp_path: Path, threshold: float,
                                           limits: str) -> None:
    """Everyone looks alike at a huge threshold: the first query names someone and /verify
    accepts it. No one does at a tiny one: every `unknown` counts, and the failure budget
    stops the search after 3 queries."""
    cfg = _lookalike_gate(tmp_path / "gate.toml", threshold, limits)
    with g.running(cfg) as server:
        assert main(["attack-gate", server.url, "--mode", "lookalike", "--key",
                     _key(server.url), "--admin-key", g.ADMIN, "--gallery", "3",
                     "--probes", "6", "--no-progress", "--gate-config", str(cfg),
                     "--out", str(tmp_path / "la")]) == 0
    res = LookalikeResults.from_dict(json.loads((tmp_path / "la/results.json").read_text()))
    assert res.gallery == 3
    if threshold > 1:
        assert res.first_found_at == 1 and res.found.k == res.queries == 6
        assert res.verified.k == res.verified.n == 6 and res.stopped_at is None
    else:
        assert res.first_found_at is None and res.found.k == 0
        assert (res.queries, res.stopped_at) == (3, 4) and "locked out" in res.stopped_by
        assert res.first_found_at_limits_s is None and res.limits["max_rejections"] == 3
    assert "Look-alike search" in (tmp_path / "la/report.html").read_text()


def test_time_to_query_counts_lockout_windows() -> None:
    limits = parse_gate_config({"limits": {"max_rejections": 20, "lockout_window_s": 3600.0,
                                           "key_rate": 1.0, "key_burst": 5}}).limits
    assert time_to_query(20, limits) == 15.0  # within the first window: the rate decides
    assert time_to_query(21, limits) == 3600.0  # the 21st failure waits a whole window
    assert time_to_query(101, limits) == 5 * 3600.0
    assert time_to_query(101, None) is None
