from __future__ import annotations

import json
from pathlib import Path

import pytest

from facerobust.attacks.cli import build_attack
from facerobust.cli import main


def test_cli_rejects_bad_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["attack", "--eps", "1/255,-1", "--out", str(tmp_path)]) == 2
    assert "epsilon must be >= 0" in capsys.readouterr().err
    assert main(["attack", "--attack", "cw", "--norm", "linf", "--out", str(tmp_path)]) == 2
    assert "cw is an L2 attack" in capsys.readouterr().err
    assert main(["attack", "--n", "0", "--out", str(tmp_path)]) == 2
    assert "--n must be >= 1" in capsys.readouterr().err


def test_build_attack_names() -> None:
    assert type(build_attack("fgsm", norm="l2", steps=None, queries=10)).__name__ == "FGM"
    assert build_attack("pgd", norm="l2", steps=3, queries=10).steps == 3
    assert build_attack("square", norm="linf", steps=None, queries=50).max_queries == 50


@pytest.mark.data
@pytest.mark.slow
def test_cli_dodging_writes_json_and_png(lfw_root: Path, tmp_path: Path) -> None:
    pytest.importorskip("dlib")
    out = tmp_path / "run"
    code = main(["attack", "--model", "dlib-resnet", "--dataset", "lfw-gray",
                 "--data", str(lfw_root.parent), "--attack", "fgsm", "--eps", "1/255,2/255",
                 "--goal", "dodging", "--n", "3", "--seed", "1", "--out", str(out),
                 "--no-progress"])
    assert code == 0
    doc = json.loads((out / "attack.json").read_text())
    assert doc["n_attacked"] == 3 and doc["goal"] == "dodging"
    rates = [row["success_rate"] for row in doc["per_epsilon"]]
    assert rates == sorted(rates)
    first = doc["per_epsilon"][0]
    assert first["mean_distance_before"] <= doc["threshold"]  # only accepted pairs attacked
    assert first["mean_perturbation_norm"] <= 1 / 255 + 1e-6
    assert (out / "examples.png").stat().st_size > 1000
