"""Distilling dlib-student: the student moves towards the teacher, a killed run resumes to the
same steps, a checkpoint of another recipe is refused by name, bad recipes are named."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from facerobust import models
from facerobust.defenses.augment import augment_batch
from facerobust.eval import student_train
from facerobust.eval.student_train import StudentRecipe, distil_student
from facerobust.models.distill import distill_loss
from facerobust.models.dlib_slim import slim_from_teacher

TINY = StudentRecipe(epochs=3, batch_size=16, lr=2e-3, progress=False)


@pytest.fixture(scope="module")
def teacher() -> models.FaceModel:
    return models.load("dlib-resnet")


@pytest.fixture(scope="module")
def chips() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    smooth = torch.nn.functional.interpolate(torch.rand(48, 3, 15, 15, generator=g),
                                             size=(150, 150), mode="bilinear")
    return (smooth * 255).round().to(torch.uint8)


def _gap(student: torch.nn.Module, teacher: torch.nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(distill_loss(student(x), teacher(x)))


def test_distillation_moves_the_student_towards_the_teacher(
        teacher: models.FaceModel, chips: torch.Tensor) -> None:
    x = chips.float() / 255
    start = slim_from_teacher(teacher, x[:16], TINY.choice()).eval()  # type: ignore[arg-type]
    student, report = distil_student(teacher, chips, TINY)  # type: ignore[arg-type]
    assert report.steps == 3 * 3 and len(report.loss_history) == 3
    assert _gap(student, teacher, x) < 0.8 * _gap(start, teacher, x)


def test_killed_run_resumes_and_other_recipe_is_refused(
        tmp_path: Path, teacher: models.FaceModel, chips: torch.Tensor,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = tmp_path / "s.ckpt"
    r = replace(TINY, checkpoint=str(ckpt), checkpoint_seconds=1e-9)
    calls, real = [], student_train.augment_rows

    def dies_at_step_5(*args: object) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(student_train, "augment_rows", dies_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        distil_student(teacher, chips, r)  # type: ignore[arg-type]
    monkeypatch.setattr(student_train, "augment_rows", real)
    assert ckpt.is_file()
    with pytest.raises(ValueError, match="was made with lr=0.002, this run has lr=0.001"):
        distil_student(teacher, chips, replace(r, lr=1e-3))  # type: ignore[arg-type]
    _, resumed = distil_student(teacher, chips, r)  # type: ignore[arg-type]
    _, whole = distil_student(teacher, chips, TINY)  # type: ignore[arg-type]
    assert resumed.steps == whole.steps == 9 and not ckpt.exists()
    assert resumed.loss_history == pytest.approx(whole.loss_history, rel=1e-4)


def test_bad_recipes_are_named(teacher: models.FaceModel) -> None:
    with pytest.raises(ValueError, match=r"gray must be a number in \[0, 1\]"):
        StudentRecipe(gray=2.0)
    with pytest.raises(ValueError, match="epochs"):
        StudentRecipe(epochs=0)
    with pytest.raises(ValueError, match="need >= 32 chips"):
        distil_student(teacher, torch.zeros(4, 3, 150, 150, dtype=torch.uint8),  # type: ignore[arg-type]
                       StudentRecipe())


def test_shift_moves_the_face_and_is_off_by_default() -> None:
    x = torch.zeros(1, 1, 20, 20)
    x[..., 8:12, 8:12] = 1.0
    still = augment_batch(x, torch.Generator().manual_seed(0), max_degrees=0, zoom=0,
                          flip=False)
    moved = augment_batch(x, torch.Generator().manual_seed(0), max_degrees=0, zoom=0,
                          flip=False, shift=0.2)
    assert torch.allclose(still, x, atol=1e-5)
    assert not torch.allclose(moved, x, atol=0.1)


def test_build_saves_calibrates_on_held_out_people_and_writes_the_card(
        tmp_path: Path, chips: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    from facerobust.eval import student_build
    from facerobust.models import dlib_student

    labels = torch.arange(48) // 4  # 12 people, 4 chips each
    monkeypatch.setattr(student_build, "training_chips", lambda data=None: (chips, labels))
    recipe = replace(TINY, epochs=1, holdout_people=3)
    card = student_build.build_student(out=tmp_path / "s.pt", recipe=recipe, judge=False,
                                       progress=False)
    assert card["training"]["chips"] == 36 and card["training"]["people"] == 9
    assert "12 chips of 3 held-out" in card["threshold"]["calibrated_on"]
    assert card["speed"]["speedup"] > 0 and "judged" not in card
    saved = dlib_student.build(weights=tmp_path / "s.pt")
    assert saved.threshold == pytest.approx(card["threshold"]["value"])
    assert dlib_student.card_path(tmp_path / "s.pt").is_file()


def test_without_held_out_people_the_student_keeps_dlibs_threshold(
        tmp_path: Path, chips: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    from facerobust.eval import student_build

    labels = torch.arange(48) // 4
    monkeypatch.setattr(student_build, "training_chips", lambda data=None: (chips, labels))
    card = student_build.build_student(out=tmp_path / "s.pt", judge=False, progress=False,
                                       recipe=replace(TINY, epochs=1, holdout_people=0))
    assert card["threshold"] == {"value": 0.6, "calibrated_on": "dlib's threshold",
                                 "accuracy_there": None}
    assert card["training"]["chips"] == 48
