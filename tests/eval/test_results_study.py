"""Typed study results: JSON round-trip, schema-version refusal, missing-key errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from facerobust.eval.compare import Comparison
from facerobust.eval.results_study import (
    StudentCard,
    load_card,
    load_comparison,
    load_defensive,
    load_training,
)
from tests.helpers import study_results as fake


def _write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc, indent=2))
    return path


@pytest.mark.parametrize(("make", "load"), [(fake.student_card, load_card),
                                            (fake.defensive, load_defensive),
                                            (fake.comparison, load_comparison)])
def test_round_trip_through_json(tmp_path: Path, make: Any, load: Any) -> None:
    typed = make()
    path = _write(tmp_path / "r.json", typed.to_dict())
    again = load(path)
    assert again == typed and type(again) is type(typed)
    doc = json.loads(path.read_text())  # rates keep their readable layout
    first = next(iter(doc["heads"].values()))["naive_pgd"] if "heads" in doc else None
    if first is not None:
        assert set(first) == {"k", "n", "rate", "ci95"} and first["k"] == 40


def test_card_keeps_its_readable_layout_and_typed_parts(tmp_path: Path) -> None:
    card = load_card(_write(tmp_path / "s.card.json", fake.student_card().to_dict()))
    assert isinstance(card, StudentCard) and isinstance(card.comparison, Comparison)
    assert card.transfer_teacher_to_student[0].student.k == 3
    assert card.comparison.models[1].correct.n == 60
    doc = json.loads((tmp_path / "s.card.json").read_text())
    assert doc["lfw"]["student_accuracy"] == pytest.approx(49 / 60)
    assert doc["transfer_teacher_to_student"][1]["student"]["ci95"][1] <= 1


@pytest.mark.parametrize(("make", "load", "what"), [
    (fake.student_card, load_card, "student card"),
    (fake.defensive, load_defensive, "defensive-distillation result")])
def test_other_schema_versions_are_refused(tmp_path: Path, make: Any, load: Any,
                                           what: str) -> None:
    doc = make().to_dict()
    doc["schema_version"] = 99
    path = _write(tmp_path / "old.json", doc)
    with pytest.raises(ValueError, match=rf"old\.json: {what} schema version 99 .*reads "
                                         rf"{what} schema version 1"):
        load(path)
    del doc["schema_version"]  # files from before the schema existed
    with pytest.raises(ValueError, match="schema version None"):
        load(_write(path, doc))


def test_comparison_version_and_missing_keys(tmp_path: Path) -> None:
    doc = fake.comparison().to_dict()
    doc["schema"] = 7
    with pytest.raises(ValueError, match=r"c\.json: comparison schema version 7 .* 1"):
        load_comparison(_write(tmp_path / "c.json", doc))
    doc = fake.student_card().to_dict()
    del doc["lfw"]["teacher_accuracy"]
    with pytest.raises(ValueError, match=r"s\.json\.lfw: missing key 'teacher_accuracy'"):
        load_card(_write(tmp_path / "s.json", doc))
    doc = fake.defensive().to_dict()
    del doc["heads"]["distilled"]["probe_top1"]
    with pytest.raises(ValueError, match=r"heads\.distilled: missing key 'probe_top1'"):
        load_defensive(_write(tmp_path / "d.json", doc))


def test_training_json_judged_block(tmp_path: Path) -> None:
    doc = fake.training_doc()
    path = _write(tmp_path / "training.json", doc)
    raw, judged = load_training(path)
    assert judged == fake.judged() and raw["model"] == "teacher-x"
    assert judged.conditions["c_cw_l2"].after.k == 0
    doc["judged"]["schema_version"] = 2
    with pytest.raises(ValueError, match=r"training\.json: judged: judged hardening schema "
                                         r"version 2 .* version 1"):
        load_training(_write(path, doc))
    doc["judged"] = None
    assert load_training(_write(path, doc))[1] is None
    del doc["before"]
    with pytest.raises(ValueError, match="missing key 'before'"):
        load_training(_write(path, doc))
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        load_training(tmp_path / "nothing.json")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ValueError, match=r"bad\.json: not valid JSON"):
        load_card(tmp_path / "bad.json")


def test_the_committed_measurements_load_under_the_current_schemas() -> None:
    folder = Path(__file__).resolve().parents[2] / "docs" / "results" / "issue15"
    card = load_card(folder / "dlib-student.card.json")
    assert card.comparison.models[0].correct.n == card.lfw.n_pairs
    for path in folder.glob("defensive-*.json"):
        assert set(load_defensive(path).heads) == {"plain", "distilled"}
    for path in folder.glob("harden-*.json"):
        judged = load_training(path)[1]
        assert judged is not None and "d_augmented_attack" in judged.conditions
    assert load_comparison(folder / "comparison.json").n_attacked > 0
