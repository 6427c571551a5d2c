"""The distilled student: contract, save/load with a verified card, zoo loading, training."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from facerobust import models
from facerobust.cli import main
from facerobust.eval.distillation import calibrate_threshold, save_with_card
from facerobust.eval.results_study import load_card
from facerobust.models.cards import student_measured
from facerobust.models.distill import TrainStudentOptions, train_student
from facerobust.models.student import (
    StudentNet,
    card_path,
    default_student_path,
    load_student,
    sha256_of,
)
from tests.helpers import study_results as fake
from tests.helpers.models import PooledPixels
from tests.helpers.synthetic_lfw import fake_chip, make_lfw, synthetic_lfw  # noqa: F401 (fixture)


def _chips(ids: int = 6, per: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    paths = [Path(f"/x/P{i}/P{i}_{k}.jpg") for i in range(ids) for k in range(per)]
    return (torch.stack([fake_chip(p) for p in paths]),
            torch.arange(ids).repeat_interleave(per))


def test_student_follows_the_model_contract() -> None:
    net = StudentNet(embedding_dim=16, widths=(4, 8), input_px=16)
    x = torch.rand(3, 3, 150, 150, requires_grad=True)
    out = net(x)
    assert out.shape == (3, 16)
    out.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match=r"inputs must lie in \[0, 1\]"):
        net(torch.full((1, 3, 150, 150), 2.0))
    with pytest.raises(ValueError, match="bad student shape"):
        StudentNet(widths=(4, 4, 4, 4, 4), input_px=16)


def test_save_load_verifies_weights_and_loads_as_zoo_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = StudentNet(embedding_dim=8, widths=(4,), input_px=8, threshold=0.42).eval()
    path = tmp_path / "s.pt"
    saved = save_with_card(path, net, fake.student_card())
    card = json.loads(card_path(path).read_text())
    assert card["teacher"] == "teacher-x" and len(card["weights_sha256"]) == 64
    assert card["weights_file"] == "s.pt" and card["threshold"] == pytest.approx(0.42)
    typed = load_card(card_path(path))  # the typed card, its architecture from the model
    assert typed == saved and typed.weights_sha256 == sha256_of(path) and typed.widths == [4]
    assert student_measured("distilled-student", path) == {
        "accuracy": typed.lfw.student_accuracy, "pairs": 60, "pairs_file": "pairs.txt",
        "dataset": "/data/lfw", "teacher": "teacher-x",
        "teacher_accuracy": typed.lfw.teacher_accuracy,
        "ms_per_image_batch32": typed.ms_per_image_batch32.to_dict()}
    again = models.load(str(path))  # a student file is a zoo model name
    x = torch.rand(2, 3, 150, 150)
    assert isinstance(again, StudentNet) and again.threshold == pytest.approx(0.42)
    assert torch.allclose(again(x), net(x))
    blob = bytearray(path.read_bytes())
    blob[-20] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="do not match the SHA-256"):
        load_student(path)
    assert card["kind"] == "student-card" and card["schema_version"] == 3  # the one wrapper
    old = {k: v for k, v in card.items() if k != "kind"}
    old["schema_version"] = 0  # a card from before the wrapper, of an unknown version
    card_path(path).write_text(json.dumps(old))
    with pytest.raises(ValueError, match=r"s\.card\.json: student card schema version 0"):
        load_student(path)
    with pytest.raises(FileNotFoundError, match="student weights not found"):
        models.load(str(tmp_path / "missing.pt"))


def test_train_student_keeps_best_validation_and_calibrates() -> None:
    chips, labels = _chips()
    teacher = PooledPixels()
    student = StudentNet(embedding_dim=64, widths=(8, 16), input_px=32)
    with torch.no_grad():
        before = float(((student(chips) - teacher(chips)) ** 2).mean())
    student, hist = train_student(teacher, chips, TrainStudentOptions(epochs=6, batch_size=8),
                                  student=student)
    assert len(hist.train_loss) == len(hist.val_loss) == 6
    assert hist.val_loss[hist.best_epoch] == min(hist.val_loss)
    assert hist.n_train + hist.n_val == len(chips)
    with torch.no_grad():
        after = float(((student(chips) - teacher(chips)) ** 2).mean())
    assert after < before
    thr, acc = calibrate_threshold(student, chips, labels)
    assert thr > 0 and 0.5 <= acc <= 1
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        TrainStudentOptions(epochs=0)
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 0.5\)"):
        TrainStudentOptions(val_fraction=0.5)
    with pytest.raises(ValueError, match="need >= 10 chips"):
        train_student(teacher, chips[:9])


@pytest.mark.slow
def test_distill_cli_end_to_end(synthetic_lfw: Path, tmp_path: Path,  # noqa: F811
                                monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    root = make_lfw(tmp_path / "big", identities=24)  # 12 identities outside every pair
    real_load = models.load
    monkeypatch.setattr(models, "load", lambda name, device=None: PooledPixels()
                        if not str(name).endswith(".pt") else real_load(name))
    run = tmp_path / "student"
    argv = ["distill", "--teacher", "pooled", "--data", str(root), "--out", str(run),
            "--eval-pairs", "20", "--epochs", "2", "--widths", "4,8", "--input-px", "16",
            "--attack-pairs", "4", "--no-progress"]
    assert main(argv) == 0
    assert "ms/image" in capsys.readouterr().out
    out = run / "student.pt"  # the run folder holds the student, its card and the report
    assert card_path(out) == run / "results.json" and (run / "report.html").is_file()
    card = json.loads(card_path(out).read_text())
    assert card["kind"] == "student-card"
    data = card["data"]
    assert card["teacher"] == "pooled" and data["excluded_identities"] + data["identities"] == 24
    assert data["identities"] >= 12 and data["images"] == 4 * data["identities"]
    assert 0 <= card["lfw"]["student_accuracy"] <= 1
    assert card["ms_per_image_batch32"]["speedup"] > 0
    assert isinstance(models.load(str(out)), StudentNet)
    assert main(argv) == 0  # the finished run is reused
    assert "reused the finished student-card run" in capsys.readouterr().err
    old_form = tmp_path / "s.pt"  # the old --out FILE.pt still works, with a note
    assert main([*argv[:5], "--out", str(old_form), *argv[7:]]) == 0
    assert "old form" in capsys.readouterr().err and card_path(old_form).name == "s.card.json"
    assert isinstance(models.load(str(old_form)), StudentNet)


def test_default_student_is_listed_with_its_measured_accuracy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    net = StudentNet(embedding_dim=128, widths=(4,), input_px=8)
    card = fake.student_card()
    card = replace(card, teacher="dlib-resnet",
                   lfw=replace(card.lfw, student_accuracy=0.75, n_pairs=40))
    save_with_card(default_student_path(), net, card)
    assert isinstance(models.load("distilled-student"), StudentNet)
    assert main(["models", "list"]) == 0
    line = next(r for r in capsys.readouterr().out.splitlines()
                if r.startswith("distilled-student"))
    assert "ready" in line and "LFW 0.7500 (40 pairs)" in line
