"""dlib-student: cut out of dlib exactly, saved and read back with its layout, the shipped build
pinned and able to stand in for dlib (its probe matches the dlib-enrolled photo of the same
face), bad files and layouts refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from facerobust import models
from facerobust.cli.demo import embedded_dataset
from facerobust.data.chips import load_chips
from facerobust.models import dlib_student
from facerobust.models.cards import card
from facerobust.models.dlib_slim import SlimChoice, slim_from_teacher
from facerobust.models.dlib_student import (
    BlockLayout,
    build,
    read_student_file,
    save_student_file,
)

COMMAND = "facerobust models build dlib-student"
CHOICE = SlimChoice(112, (0, 3, 4, 7, 8, 10, 11, 13), (0.5, 0.5, 0.5, 0.75, 0.75))


@pytest.fixture(scope="module")
def teacher() -> models.FaceModel:
    return models.load("dlib-resnet")


@pytest.fixture()
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache and no packaged weights: the model is not built."""
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(dlib_student, "PACKAGED", tmp_path / "none.pt")
    return tmp_path


def _x(n: int = 3) -> torch.Tensor:
    return torch.rand(n, 3, 150, 150, generator=torch.Generator().manual_seed(0))


def test_keeping_everything_reproduces_the_teacher(teacher: models.FaceModel) -> None:
    full = SlimChoice(150, tuple(range(14)), (1.0,) * 5)
    student = slim_from_teacher(teacher, _x(4), full).eval()  # type: ignore[arg-type]
    with torch.no_grad():
        assert torch.equal(student(_x()), teacher(_x()))


def test_saved_student_rebuilds_from_its_file(tmp_path: Path,
                                              teacher: models.FaceModel) -> None:
    student = slim_from_teacher(teacher, _x(4), CHOICE).eval()  # type: ignore[arg-type]
    student.threshold = 0.42
    path = save_student_file(tmp_path / "s.pt", student, {"epochs": 1})
    back, by_path = build(weights=path), models.load(str(path))
    assert read_student_file(path)["recipe"] == {"epochs": 1}
    assert back.layout == student.layout and back.threshold == pytest.approx(0.42)
    assert len(back.blocks) == 8 and back.layout.blocks[-1].cout == 192
    with torch.no_grad():
        want = student(_x())
        assert torch.allclose(back(_x()), want, atol=2e-2)  # float16 weights
        assert torch.equal(by_path(_x()), back(_x()))


def test_bad_choices_layouts_and_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="every downsampling block"):
        SlimChoice(112, (0, 4, 7, 8, 10, 11, 13), (0.5,) * 5)
    with pytest.raises(ValueError, match="fraction needs 5 values"):
        SlimChoice(112, CHOICE.keep, (0.5,) * 4)
    with pytest.raises(ValueError, match="shortcut must map 2 outputs"):
        BlockLayout(4, 4, 2, 1, (0, 1, 2))
    with pytest.raises(FileNotFoundError, match=COMMAND):
        read_student_file(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not torch")
    with pytest.raises(ValueError, match="not a readable dlib-student file"):
        read_student_file(junk)
    torch.save({"format": 1, "name": "dlib-student"}, tmp_path / "empty.pt")
    with pytest.raises(ValueError, match="without layout, state_dict, threshold"):
        build(weights=tmp_path / "empty.pt")


def test_unbuilt_model_names_the_build_command(nowhere: Path) -> None:
    assert models.weights_path("dlib-student") is None
    with pytest.raises(FileNotFoundError, match=COMMAND):
        models.load("dlib-student")
    assert not card("dlib-student").weights_available


def test_card_reads_the_figures_written_beside_a_build(nowhere: Path,
                                                       teacher: models.FaceModel) -> None:
    student = slim_from_teacher(teacher, _x(4), CHOICE)  # type: ignore[arg-type]
    path = save_student_file(dlib_student.built_path(), student, {"epochs": 1})
    speed = {"speedup": 5.5, "student_ms": 1.0, "teacher_ms": 5.5}
    dlib_student.card_path(path).write_text(json.dumps(
        {"recipe": {"epochs": 1}, "training": {"chips": 9}, "speed": speed,
         "judged": {"pairs": 6000, "student": {"accuracy_10fold": 0.9}}}))
    c = card("dlib-student")
    assert c.weights_available and c.measured is not None and c.measured["speed"] == speed


def test_shipped_student_is_pinned_and_stands_in_for_dlib(teacher: models.FaceModel) -> None:
    assert dlib_student.weights_file() == dlib_student.PACKAGED
    dlib_student.check_packaged(dlib_student.PACKAGED)
    student = models.load("dlib-student")
    photos = sorted(embedded_dataset().rglob("*.jpg"))[:12]
    chips = load_chips(photos, cache=False, progress=False).chips
    with torch.no_grad():
        probe, enrolled = student(chips), teacher(chips)
    d = torch.cdist(probe, enrolled)
    # each student probe is nearest to a dlib template of the same person, and dlib's rule
    # accepts it against the template of its own photo
    people = [p.parent.name for p in photos]
    assert len(set(people)) >= 8
    assert [people[j] for j in d.argmin(dim=1).tolist()] == people
    assert float(d.diagonal().max()) < float(teacher.threshold)
    assert card("dlib-student").measured  # the card shipped beside the weights



def test_models_list_shows_the_shipped_figures_and_build_checks_its_flags(capsys) -> None:
    from facerobust.cli import main

    assert main(["models", "list"]) == 0
    line = next(r for r in capsys.readouterr().out.splitlines() if r.startswith("dlib-student"))
    assert "ready" in line and "lfw-color 0.90" in line and "x dlib-resnet's speed" in line
    assert main(["models", "build", "dlib-student", "--limit-people", "3"]) == 2
    assert "--limit-people applies to dlib-resnet-hardened only" in capsys.readouterr().err


def test_build_command_prints_every_rate_with_its_n_and_interval(
        capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from facerobust.cli import main
    from facerobust.cli import models as models_cli

    def rate(k: int, n: int) -> dict[str, object]:
        return {"k": k, "n": n, "rate": k / n, "ci95": [0.5, 0.9]}

    fake = {"name": "dlib-student", "seconds_total": 9.0,
            "training": {"chips": 10, "people": 3},
            "speed": {"student_ms": 1.0, "teacher_ms": 5.5, "speedup": 5.5},
            "judged": {"dataset": "lfw-color", "pairs": 8,
                       "student": {"accuracy_10fold": 0.75},
                       "teacher": {"accuracy_10fold": 1.0},
                       "student_vs_dlib_gallery": {"genuine_accept": rate(3, 4),
                                                   "impostor_reject": rate(2, 4)}}}
    monkeypatch.setattr(models_cli, "build_student", lambda **_: fake)
    assert main(["models", "build", "dlib-student"]) == 0
    out = capsys.readouterr().out
    assert "genuine accepted 3/4 (75.0%, 95% CI 50.0%-90.0%)" in out
    assert "impostors rejected 2/4 (50.0%, 95% CI 50.0%-90.0%)" in out
    assert main(["models", "list"]) == 0
    line = next(r for r in capsys.readouterr().out.splitlines()
                if r.startswith("dlib-resnet-hardened"))
    assert "PGD dodging 167/198 (84.3%, 95% CI" in line
