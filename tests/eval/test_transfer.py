"""Transfer in the audit: full-budget adversarials, clean failures excluded, ensemble sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facerobust import models
from facerobust.cli import main
from tests.helpers.models import PooledPixels

MODELS = """
[run]
seed = 0
batch_size = 8

[data]
root = "{root}"
clean_pairs_per_fold = 3
attack_pairs = {pairs}

[models]
victim = "p8"
others = ["p4", "p6"]
"""

CONFIG = MODELS + """
[[attack]]
name = "mditifgsm"
epsilons = ["2/255", "8/255"]
steps = 3
goals = ["impersonation"]

[[attack]]
name = "pgd"
epsilons = ["8/255"]
steps = 3
goals = ["impersonation"]
surrogates = ["p8", "p4"]

[[fusion]]
models = ["p8", "p6"]
epsilons = ["8/255"]
steps = 3
goal = "impersonation"
samples = 4
"""


def _pooled_models(monkeypatch: pytest.MonkeyPatch) -> None:
    pools = {"p8": 8, "p4": 4, "p6": 6}
    monkeypatch.setattr(models, "load", lambda name, device=None: PooledPixels(pools[name]))


@pytest.mark.data
def test_ensemble_source_and_full_budget_transfer(lfw_root: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _pooled_models(monkeypatch)
    config = tmp_path / "t.toml"
    config.write_text(CONFIG.format(root=lfw_root, pairs=6))
    assert main(["audit", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    boosted, ensemble = results["attacks"]
    assert boosted["attack"] == "mditifgsm" and set(boosted["transfer"]) == {"p4", "p6"}
    assert boosted["max_perturbation"][-1] == pytest.approx(8 / 255, abs=1e-6)  # full budget
    for target, row in boosted["transfer"].items():
        assert row["success"][-1]["n"] == boosted["n"] - row["clean_success"]["k"], target
    assert ensemble["key"] == "pgd-linf-ens-p8+p4-impersonation"
    assert ensemble["surrogates"] == ["p8", "p4"]
    assert set(ensemble["transfer"]) == {"p6"}  # the held-out target only
    assert ensemble["success"][0]["n"] == ensemble["n"]
    (fusion,) = results["fusions"]
    assert fusion["models"] == ["p8", "p6"] and set(fusion["from_member"]) == {"p8", "p6"}
    assert fusion["adaptive"][0]["n"] == fusion["n_attacked"] > 0
    html = (tmp_path / "run" / "report.html").read_text()
    assert "ensemble of p8+p4" in html and 'id="fusion-table"' in html
    assert any(s.startswith("Fusion p8 + p6") for s in results["summary"]["sentences"])


ALL_SOURCES = MODELS + """
[[attack]]
name = "fgsm"
epsilons = ["8/255"]
goals = ["impersonation"]
all_sources = true
"""


@pytest.mark.data
def test_every_model_as_source_and_leave_one_out(lfw_root: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _pooled_models(monkeypatch)
    config = tmp_path / "all.toml"
    config.write_text(ALL_SOURCES.format(root=lfw_root, pairs=4))
    assert main(["audit", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    sources = [a["surrogates"] for a in results["attacks"]]
    assert sources == [[], ["p4"], ["p6"], ["p4", "p6"], ["p8", "p6"], ["p8", "p4"]]
    (matrix,) = results["source_target"]
    assert matrix["rows"] == ["p8", "p4", "p6", "p4+p6", "p8+p6", "p8+p4"]
    assert matrix["targets"] == ["p8", "p4", "p6"]
    loo = matrix["values"][3]  # crafted on p4+p6: only p8 is a target
    assert loo[0] is not None and loo[1] is None and loo[2] is None
    single = results["attacks"][1]  # crafted on p4 alone: its own cell counts its correct ones
    assert matrix["values"][1][1] == single["success"][-1]
    assert "Every model as source" in (tmp_path / "run" / "report.html").read_text()


def test_transfer_matrix_carries_a_clean_failure_baseline_row() -> None:
    from tests.report.conftest import make_results

    matrix = make_results()["transfer_matrix"]
    baseline = [r for r in matrix["rows"] if r.startswith("no attack")]
    assert baseline == ["no attack (dodging): clean failures",
                        "no attack (impersonation): clean failures"]
    row = matrix["values"][matrix["rows"].index(baseline[0])]
    assert row[0]["n"] == 4 and row[1]["k"] == 0  # victim and the transfer target's own
