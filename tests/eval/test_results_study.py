"""Typed study results: kinds of the one versioned wrapper, JSON round-trip, files written
before the wrapper still read, other versions refused, missing-key errors, and exactly one
schema constant in the package."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from facerobust.eval.compare import Comparison
from facerobust.eval.results_file import SCHEMA_VERSION, wrap
from facerobust.eval.results_study import (
    AdvTrainResult,
    StudentCard,
    load_card,
    load_comparison,
    load_defensive,
    load_training,
)
from tests.helpers import study_results as fake

SRC = Path(__file__).resolve().parents[2] / "src" / "facerobust"


def _write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc, indent=2))
    return path


@pytest.mark.parametrize(("make", "load", "kind"), [
    (fake.student_card, load_card, "student-card"),
    (fake.defensive, load_defensive, "defensive-distill"),
    (fake.comparison, load_comparison, "comparison")])
def test_round_trip_through_the_wrapper(tmp_path: Path, make: Any, load: Any,
                                        kind: str) -> None:
    typed = make()
    path = _write(tmp_path / "results.json", wrap(typed))
    again = load(path)
    assert again == typed and type(again) is type(typed)
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == SCHEMA_VERSION and doc["kind"] == kind
    first = next(iter(doc["heads"].values()))["naive_pgd"] if "heads" in doc else None
    if first is not None:  # rates keep their readable layout
        assert set(first) == {"k", "n", "rate", "ci95"} and first["k"] == 40


@pytest.mark.parametrize(("make", "load", "key"), [
    (fake.student_card, load_card, "schema_version"),
    (fake.defensive, load_defensive, "schema_version"),
    (fake.comparison, load_comparison, "schema")])
def test_files_from_before_the_wrapper_are_read(tmp_path: Path, make: Any, load: Any,
                                                key: str) -> None:
    typed = make()
    assert load(_write(tmp_path / "old.json", fake.legacy(typed.to_dict(), key))) == typed


def test_card_keeps_its_readable_layout_and_typed_parts(tmp_path: Path) -> None:
    card = load_card(_write(tmp_path / "s.card.json", wrap(fake.student_card())))
    assert isinstance(card, StudentCard) and isinstance(card.comparison, Comparison)
    assert card.transfer_teacher_to_student[0].student.k == 3
    assert card.comparison.models[1].correct.n == 60
    doc = json.loads((tmp_path / "s.card.json").read_text())
    assert doc["lfw"]["student_accuracy"] == pytest.approx(49 / 60)
    assert doc["transfer_teacher_to_student"][1]["student"]["ci95"][1] <= 1


@pytest.mark.parametrize(("make", "load", "what"), [
    (fake.student_card, load_card, "student card"),
    (fake.defensive, load_defensive, "defensive-distillation result")])
def test_other_versions_are_refused_naming_both(tmp_path: Path, make: Any, load: Any,
                                                what: str) -> None:
    doc = fake.legacy(make().to_dict())
    doc["schema_version"] = 99
    path = _write(tmp_path / "old.json", doc)
    with pytest.raises(ValueError, match=rf"old\.json: results schema version 99 .*reads "
                                         rf"schema version 3; it also converts {what} "
                                         "schema 1"):
        load(path)
    del doc["schema_version"]  # files from before any schema existed
    with pytest.raises(ValueError, match="schema version None"):
        load(_write(path, doc))
    with pytest.raises(ValueError, match=r"a 'comparison' result, not a"):
        load(_write(path, wrap(fake.comparison())))


def test_comparison_version_and_missing_keys(tmp_path: Path) -> None:
    doc = fake.legacy(fake.comparison().to_dict(), "schema")
    doc["schema"] = 7
    with pytest.raises(ValueError, match=r"c\.json: results schema version 7 .* comparison "
                                         r"schema 1"):
        load_comparison(_write(tmp_path / "c.json", doc))
    doc = wrap(fake.student_card())
    del doc["lfw"]["teacher_accuracy"]
    with pytest.raises(ValueError, match=r"s\.json\.lfw: missing key 'teacher_accuracy'"):
        load_card(_write(tmp_path / "s.json", doc))
    doc = wrap(fake.defensive())
    del doc["heads"]["distilled"]["probe_top1"]
    with pytest.raises(ValueError, match=r"heads\.distilled: missing key 'probe_top1'"):
        load_defensive(_write(tmp_path / "d.json", doc))


def test_adv_train_result_and_the_old_training_json(tmp_path: Path) -> None:
    old = fake.training_doc()
    raw, judged = load_training(_write(tmp_path / "training.json", old))
    assert judged == fake.judged() and raw["model"] == "teacher-x"
    assert judged.conditions["c_cw_l2"].after.k == 0
    training = {k: v for k, v in old.items() if k not in (
        "model", "train_identities", "holdout_identities", "validation_identities", "judged")}
    new = AdvTrainResult("teacher-x", ["A", "B"], ["C"], [], training, fake.judged())
    doc = json.loads(json.dumps(wrap(new)))
    assert doc["kind"] == "adv-train" and doc["epochs"] == 2  # flat, as training.json was
    assert load_training(_write(tmp_path / "results.json", doc))[1] == fake.judged()
    old["judged"]["schema_version"] = 2
    with pytest.raises(ValueError, match=r"training\.json: judged: results schema version 2 "
                                         r".* judged hardening schema 1"):
        load_training(_write(tmp_path / "training.json", old))
    old["judged"] = None
    assert load_training(_write(tmp_path / "training.json", old))[1] is None
    del old["before"]
    with pytest.raises(ValueError, match="missing key 'before'"):
        load_training(_write(tmp_path / "training.json", old))
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


def _schema_constants(path: Path) -> list[str]:
    """Module-level names holding a schema version (``*SCHEMA*`` = an int) in ``path``."""
    found = []
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) and node.value else []
        value = getattr(node, "value", None)
        for t in targets:
            if isinstance(t, ast.Name) and "SCHEMA" in t.id and isinstance(value, ast.Constant) \
                    and isinstance(value.value, int):
                found.append(f"{path.relative_to(SRC)}:{t.id}")
    return found


def test_exactly_one_schema_constant_remains() -> None:
    found = [c for p in sorted(SRC.rglob("*.py")) for c in _schema_constants(p)
             if ":LEGACY_" not in c]  # the audit's reader of schema-2 files names its version
    assert found == ["eval/results_file.py:SCHEMA_VERSION"]
