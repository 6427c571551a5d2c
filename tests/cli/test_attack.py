from __future__ import annotations

import json
from pathlib import Path

import pytest

from facerobust.cli import main


def test_cli_rejects_bad_settings_before_any_work(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["attack", "--eps", "1/255,-1", "--out", str(out)]) == 2
    assert "epsilon must be >= 0" in capsys.readouterr().err
    assert main(["attack", "--attack", "cw", "--norm", "linf", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "attack 'cw' does not support norm 'linf'" in err and "supported: l2" in err
    assert main(["attack", "--n", "0", "--out", str(out)]) == 2
    assert "--n must be >= 1" in capsys.readouterr().err
    assert main(["attack", "--steps", "0", "--out", str(out)]) == 2
    assert "steps: must be an integer >= 1" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.data
@pytest.mark.slow
def test_cli_dodging_is_a_one_unit_audit(lfw_root: Path, tmp_path: Path) -> None:
    pytest.importorskip("dlib")
    out = tmp_path / "run"
    code = main(["attack", "--model", "dlib-resnet", "--dataset", "lfw-gray",
                 "--data", str(lfw_root.parent), "--attack", "fgsm", "--eps", "1/255,2/255",
                 "--goal", "dodging", "--n", "3", "--seed", "1", "--out", str(out),
                 "--no-progress"])
    assert code == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["schema_version"] == 3 and doc["command"] == "attack"
    (unit,) = doc["attacks"]
    assert unit["n"] == 3 and unit["goal"] == "dodging" and unit["kind"] == "white-box"
    rates = [r["rate"] for r in unit["success"]]
    assert rates == sorted(rates)
    for rate in unit["success"]:
        assert rate["n"] == 3 and rate["ci95"][0] <= rate["rate"] <= rate["ci95"][1]
    assert unit["clean_success"]["k"] == 0  # only pairs the model accepts are attacked
    assert unit["max_perturbation"][0] <= 1 / 255 + 1e-6
    assert unit["epsilon_labels"] == ["1/255", "2/255"]
    assert (out / "report.html").is_file() and (out / unit["examples"]).stat().st_size > 1000
    # the written config reruns as a plain audit into the same folder (all units reused)
    assert main(["audit", str(out / "config.toml"), "--out", str(out), "--no-progress"]) == 0
    assert "2 units, 2 already done" in (out / "audit.log").read_text()
