from __future__ import annotations

import json
from pathlib import Path

import pytest

from facerobust.eval.results import MinimalUnit, ModelOutcome
from facerobust.eval.results_load import load_results
from facerobust.eval.stats import Rate


def test_units_round_trip_through_json() -> None:
    unit = MinimalUnit(attack="pgd", norm="linf", goal="dodging", n=2, max_epsilon=0.1,
                       per_sample=[0.01, None], found=Rate(1, 2), median=0.01, passes=7)
    doc = json.loads(json.dumps(unit.to_dict()))
    assert doc["found"] == {"k": 1, "n": 2, "rate": 0.5, "ci95": list(Rate(1, 2).ci95)}
    assert MinimalUnit.from_dict(doc) == unit
    outcome = ModelOutcome(Rate(0, 3), [Rate(1, 3), Rate(3, 3)], [0.1] * 3, [[0.2] * 3] * 2)
    assert ModelOutcome.from_dict(json.loads(json.dumps(outcome.to_dict()))) == outcome


def test_malformed_units_name_the_key() -> None:
    with pytest.raises(ValueError, match="MinimalUnit: missing key 'norm'"):
        MinimalUnit.from_dict({"attack": "pgd"})
    bad = {"clean_success": {"k": 5, "n": 3}, "success": [], "score_clean": [],
           "score_adv": []}
    with pytest.raises(ValueError, match=r"ModelOutcome\.clean_success: a rate needs"):
        ModelOutcome.from_dict(bad)


def test_load_results_checks_the_schema_and_file(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"schema_version": 1, "attacks": []}))
    with pytest.raises(ValueError, match=r"schema version 1 cannot be read by this facerobust "
                                         r"\(it reads schema version 3; it also converts an "
                                         r"audit's schema 2\)"):
        load_results(path)
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="not a facerobust results file"):
        load_results(path)
    fixture = Path(__file__).parents[1] / "report" / "fixtures" / "results-schema2.json"
    doc = json.loads(fixture.read_text())
    doc["attacks"][0] = {"key": "x"}
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"attacks\[0\]: missing key"):
        load_results(path)
    doc = {"schema_version": 3, "kind": "gate-attack", "attacks": []}
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="holds a 'gate-attack' result, not an audit's"):
        load_results(path)
