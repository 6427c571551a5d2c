"""``facerobust detect``: the study as a one-unit audit, --save, and scoring with --load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facerobust import models
from facerobust.cli import main
from tests.helpers.models import TinyResNet


def test_detect_needs_a_detector_or_a_saved_one(tmp_path: Path, capsys) -> None:
    assert main(["detect", "--out", str(tmp_path / "o")]) == 2
    assert "name at least one --detector" in capsys.readouterr().err
    assert main(["detect", "--load", str(tmp_path / "none.pt"), "x.png",
                 "--out", str(tmp_path / "o")]) == 2
    assert "no such detector file" in capsys.readouterr().err


@pytest.mark.data
@pytest.mark.slow
def test_detect_study_saves_detectors_that_score_files(tmp_path: Path, lfw_root: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys) -> None:
    monkeypatch.setattr(models, "load", lambda name, device=None: TinyResNet(seed=1))
    out, saved = tmp_path / "run", tmp_path / "saved"
    argv = ["detect", "--model", "tiny", "--data", str(lfw_root), "--detector", "gallery",
            "--detector", "trajectory", "--variant", "M-cosine", "--identities", "6",
            "--n", "20", "--adaptive-eps", "4/255,16/255", "--adaptive-n", "4",
            "--no-progress", "--out", str(out)]
    assert main([*argv, "--save", str(saved)]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["command"] == "detect" and doc["schema_version"] == 3
    units = {u["name"]: u for u in doc["detectors"]}
    assert set(units) == {"gallery", "trajectory"}
    assert units["gallery"]["data"] == units["trajectory"]["data"]  # one shared data set
    for unit in units.values():
        (result,) = unit["results"]
        assert 0.0 <= result["macro_auc"] <= 1.0
        assert 0.0 <= result["macro_auc_heldout_identities"] <= 1.0
        assert all(r["n_clean"] == unit["data"]["n_probes"]["id-test"]
                   for r in result["heldout_identities"])
        assert result["clean_fpr"]["n"] == unit["data"]["n_probes"]["test"]
        for row in result["per_attack"]:
            assert row["auroc_ci95"][0] <= row["auroc"] <= row["auroc_ci95"][1]
        assert [a["epsilon_label"] for a in result["adaptive"]] == ["4/255", "16/255"] * 2
        for a in result["adaptive"]:
            assert a["naive_evades"]["k"] <= a["naive_model"]["k"] <= a["naive_model"]["n"] <= 4
    assert units["trajectory"]["results"][0]["label"] == "trajectory M-cosine"
    html = (out / "report.html").read_text()
    assert "Adversarial-input detectors" in html and "adaptive-table" in html
    files = sorted(p.name for p in saved.iterdir())
    assert files == ["detector-0-gallery.pt", "detector-1-trajectory-M-cosine.pt"]
    # a rerun into the same folder reuses every unit
    assert main(argv) == 0
    assert "already done" in (out / "audit.log").read_text()
    # score mode: a chip, a file that is not an image
    chip = tmp_path / "chip.png"
    Image.fromarray(np.full((150, 150, 3), 128, np.uint8)).save(chip)
    (tmp_path / "notes.txt").write_text("hello")
    capsys.readouterr()
    assert main(["detect", "--load", str(saved / files[0]), "--model", "tiny", "--chips",
                 str(chip), str(tmp_path / "notes.txt"), "--out", str(tmp_path / "s")]) == 0
    rows = json.loads((tmp_path / "s" / "detections.json").read_text())
    assert rows[0]["detector"] == "gallery" and isinstance(rows[0]["flagged"], bool)
    assert "error" in rows[1] and "notes.txt: skipped" in capsys.readouterr().out
    monkeypatch.setattr(models, "load", lambda name, device=None: TinyResNet(seed=9))
    assert main(["detect", "--load", str(saved / files[0]), "--model", "tiny", "--chips",
                 str(chip), "--out", str(tmp_path / "s")]) == 2
    assert "fitted on model 'tiny'" in capsys.readouterr().err


def test_fit_split_flags_are_checked_before_any_work(tmp_path: Path, capsys) -> None:
    argv = ["detect", "--detector", "gallery", "--no-progress", "--out", str(tmp_path / "o")]
    assert main([*argv, "--fit-identities", "4"]) == 2
    assert "fit_identities: needs identification.fit_dataset" in capsys.readouterr().err
    assert main([*argv, "--fit-dataset", "../cfp", "--fit-identities", "4"]) == 2
    assert "is not a dataset name" in capsys.readouterr().err
    assert not (tmp_path / "o" / "results.json").exists()


@pytest.mark.data
@pytest.mark.slow
def test_detectors_fitted_on_other_people_than_they_are_judged_on(
        tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "load", lambda name, device=None: TinyResNet(seed=1))
    monkeypatch.setenv("FACEROBUST_DATA", str(data_root))
    out = tmp_path / "run"
    argv = ["detect", "--model", "tiny", "--dataset", "lfw-color", "--fit-dataset", "cfp",
            "--fit-identities", "12", "--identities", "12", "--images-per-identity", "6",
            "--gallery-per-identity", "3", "--min-images", "6", "--detector", "trajectory",
            "--variant", "C-l2", "--nearest", "3", "--n", "30", "--adaptive-eps", "8/255",
            "--adaptive-n", "2", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    config = (out / "config.toml").read_text()
    assert 'fit_dataset = "cfp"' in config and "fit_identities = 12" in config
    assert "nearest = 3" in config
    (unit,) = json.loads((out / "results.json").read_text())["detectors"]
    (result,) = unit["results"]
    assert result["label"].startswith("trajectory C-l2") and 0 <= result["macro_auc"] <= 1
