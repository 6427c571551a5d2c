"""Every result file renders through its kind: the schema-2 audit fixture (converted on read),
the gate studies' files (schema 1 and 3), and the report opens with the verdict table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from facerobust.cli import main
from facerobust.eval.results_audit import Results
from facerobust.eval.results_file import verdict_word, write_result_file
from facerobust.eval.results_gate import GateAttackResults, PhotoStudyResults
from facerobust.eval.results_load import load_results
from facerobust.eval.stats import Rate
from facerobust.report import load_result, render_report

FIXTURES = Path(__file__).parent / "fixtures"


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / "results.json"
    shutil.copy(FIXTURES / name, target)
    return target


def test_a_schema2_results_file_is_converted_and_rendered(tmp_path: Path) -> None:
    path = _copy("results-schema2.json", tmp_path)
    old = json.loads(path.read_text())
    results = load_results(path)
    assert isinstance(results, Results) and results.summary is not None
    assert [a.key for a in results.attacks] == [a["key"] for a in old["attacks"]]
    assert results.clean["dlib-resnet"].tar_at_far == Rate(287, 300)
    html = render_report(path).read_text()
    assert 'id="verdict-table"' in html and html.index('id="verdict"') < html.index('id="clean"')
    assert html.index('id="defenses"') < html.index('id="attack-table"')  # detail below
    assert "95.7% (287/300, 95% CI 93-97%)" in html and "results schema v3" in html
    # the verdict of the 4/4 PGD dodging row: the whole interval above 50%
    assert any(v.threat.startswith("PGD linf dodging") and v.verdict == "fooled"
               for v in results.summary.verdicts)


def test_summary_sentences_are_short(tmp_path: Path) -> None:
    results = load_results(_copy("results-schema2.json", tmp_path))
    assert results.summary is not None and len(results.summary.sentences) >= 4
    for sentence in results.summary.sentences:
        assert len(sentence.split()) < 25, sentence


def test_verdict_words_follow_the_interval() -> None:
    assert verdict_word(Rate(48, 50)) == "fooled"
    assert verdict_word(Rate(1, 100)) == "holds"
    assert verdict_word(Rate(30, 100)) == "partly"
    assert verdict_word(Rate(1, 3)) == "unclear"
    assert verdict_word(Rate(0, 0)) == "not run"


@pytest.mark.parametrize("name", ["gate-attack-schema1.json", "gate-photo-schema1.json"])
def test_report_renders_the_gate_studies_results(name: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = _copy(name, tmp_path)
    assert main(["report", str(path)]) == 0
    html = (tmp_path / "report.html").read_text()
    loaded = load_result(path)
    assert loaded.overview.verdicts and 'id="verdict-table"' in html
    for row in loaded.overview.verdicts:
        assert row.success.text() in html
    # rewritten in the schema-3 wrapper, the same page comes out
    typed = loaded.result
    assert isinstance(typed, (GateAttackResults, PhotoStudyResults))
    again = write_result_file(tmp_path / "v3" / "results.json", typed)
    doc = json.loads(again.read_text())
    assert doc["schema_version"] == 3 and doc["kind"] == typed.KIND
    assert main(["report", str(again)]) == 0
    assert loaded.overview.verdicts[0].success.text() in \
        (tmp_path / "v3" / "report.html").read_text()


def test_an_unknown_kind_is_named(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"schema_version": 3, "kind": "nope"}))
    with pytest.raises(ValueError, match="unknown result kind 'nope'"):
        render_report(path)


def test_derived_curves_equal_the_ones_schema2_code_wrote(tmp_path: Path) -> None:
    """The typed summary recomputes the accuracy curves exactly as the dict-based code did
    (a goal that was not attacked adds no uncertainty to the band)."""
    from facerobust.eval.audit_summary import accuracy_curves

    path = _copy("results-schema2.json", tmp_path)
    stored = json.loads(path.read_text())["accuracy_curves"]
    curves = accuracy_curves(load_results(path))
    assert len(curves) == len(stored) > 0
    for ours, old in zip(curves, stored, strict=True):
        assert (ours.task, ours.label, ours.norm) == (old["task"], old["label"], old["norm"])
        for key in ("epsilons", "accuracy", "low", "high"):
            assert getattr(ours, key) == pytest.approx(old[key], abs=1e-12), key


def test_a_goal_not_attacked_adds_no_uncertainty(tmp_path: Path) -> None:
    from facerobust.eval.audit_summary import accuracy_curves

    path = _copy("results-schema2.json", tmp_path)
    doc = json.loads(path.read_text())
    doc["attacks"] = [a for a in doc["attacks"] if a["goal"] == "dodging"]
    path.write_text(json.dumps(doc))
    results = load_results(path)
    clean = results.victim_clean
    assert clean is not None
    dodging = results.attacks[0].success
    (curve,) = accuracy_curves(results)
    genuine, impostor = clean.genuine_accept.rate, clean.impostor_reject.rate
    for i, s in enumerate(dodging, start=1):  # impostors, never attacked, stay at their rate
        assert curve.low[i] == pytest.approx((genuine * (1 - s.ci95[1]) + impostor) / 2)
        assert curve.high[i] == pytest.approx((genuine * (1 - s.ci95[0]) + impostor) / 2)
