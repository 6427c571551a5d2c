"""adv-train with augmentation, mixing, validation and (a)-(d) judging; defensive-distill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from facerobust import models
from facerobust.cli import main
from facerobust.eval.results_study import load_defensive, load_training
from facerobust.models.student import StudentNet
from tests.helpers.models import PooledPixels
from tests.helpers.synthetic_lfw import synthetic_lfw  # noqa: F401 (fixture)


def _small_student(name: str, device: str | None = None) -> StudentNet:
    torch.manual_seed(0)
    return StudentNet(embedding_dim=8, widths=(4,), input_px=12, threshold=1.0).eval()


@pytest.mark.slow
def test_adv_train_judges_before_and_after(synthetic_lfw: Path, tmp_path: Path,  # noqa: F811
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(models, "load", _small_student)
    out = tmp_path / "run"
    argv = ["adv-train", "--model", "small", "--data", str(synthetic_lfw),
            "--train-identities", "4", "--holdout-identities", "4",
            "--validation-identities", "2", "--images", "4", "--epochs", "2", "--steps", "1",
            "--layers", "all", "--eps", "4/255", "--augment", "rotation=5,brightness=0.1",
            "--adv-fraction", "0.5", "--judge", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "c_adaptive_pgd" in text and "before" in text and "kept epoch" in text
    doc = json.loads((out / "results.json").read_text())
    assert doc["kind"] == "adv-train" and (out / "model.pt").is_file()
    assert len(doc["validation_identities"]) == 2 and len(doc["val_history"]) == 3
    assert doc["augmentation"]["brightness"] == 0.1 and doc["adv_fraction"] == 0.5
    judged = doc["judged"]["conditions"]
    assert set(judged) >= {"a_clean", "b_trained_attack", "c_cw_l2", "d_augmented_clean"}
    assert judged["a_clean"]["before"]["n"] == judged["a_clean"]["after"]["n"] == 24
    _, typed = load_training(out / "results.json")
    assert typed is not None
    html = (out / "report.html").read_text()
    assert typed.conditions["c_adaptive_pgd"].after.text() in html
    bad = [*argv[:-2], "--out", str(tmp_path / "x"), "--no-augment"]
    assert main(bad) == 2
    assert "not both" in capsys.readouterr().err


@pytest.mark.usefixtures("one_thread")
def test_defensive_distill_cli(synthetic_lfw: Path, tmp_path: Path,  # noqa: F811
                               monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(models, "load", lambda name, device=None: PooledPixels())
    out = tmp_path / "dd"
    argv = ["defensive-distill", "--model", "pooled", "--data", str(synthetic_lfw),
            "--identities", "6", "--images-per-identity", "4", "--gallery-per-identity", "2",
            "--steps", "3", "--cw-steps", "5", "--probes", "8", "--eps", "8/255",
            "--head-epochs", "200",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert "naive_pgd" in capsys.readouterr().out
    doc = json.loads((out / "results.json").read_text())
    assert doc["kind"] == "defensive-distill" and set(doc["heads"]) == {"plain", "distilled"}
    for head in doc["heads"].values():
        assert head["probe_top1"]["n"] == 12
        for key in ("naive_pgd", "logit_pgd", "cw_l2_logits"):
            assert head[key]["n"] == head["n_correct"] and "ci95" in head[key]
    typed = load_defensive(out / "results.json")
    html = (out / "report.html").read_text()
    assert typed.heads["distilled"].probe_top1.text() in html and "data:image/png" in html
    assert main(argv) == 0  # the finished run is reused
    assert "reused the finished defensive-distill run" in capsys.readouterr().err
    old = tmp_path / "dd.json"  # the old --out FILE.json: the same result, the page beside it
    assert main([*argv[:-3], "--out", str(old), "--no-progress"]) == 0
    assert "old form" in capsys.readouterr().err
    assert load_defensive(old) == typed and (tmp_path / "dd.html").is_file()
