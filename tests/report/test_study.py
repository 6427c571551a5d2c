"""Study reports: each JSON renders to a self-contained page showing its own rates and figures;
``facerobust report`` renders them too; other versions and unknown files are refused."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from facerobust.cli import main
from facerobust.eval.results_file import wrap
from facerobust.eval.stats import Rate
from facerobust.report.kinds import load_result, render_study
from facerobust.report.study import study_html_path
from tests.helpers import study_results as fake


def _write(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))
    return path


def _images(html: str) -> int:
    return len(re.findall(r'<img [^>]*src="data:image/png;base64,[A-Za-z0-9+/=]{200,}"', html))


def test_comparison_page_shows_every_rate_and_the_figure(tmp_path: Path) -> None:
    res = fake.comparison()
    html_path = render_study(_write(tmp_path / "results.json", wrap(res)))
    assert html_path == tmp_path / "report.html"
    old = _write(tmp_path / "old" / "comparison.json", fake.legacy(res.to_dict(), "schema"))
    assert load_result(old).result == res  # a comparison.json from before the wrapper
    html = html_path.read_text()
    assert _images(html) == 1 and "http" not in html.split("<body>")[1]  # self-contained
    for m in res.models:
        assert m.correct.text() in html and m.clean_error.text() in html
        assert all(p.error.text() in html for p in m.fgsm)
    assert "27/40, 95% CI" in html and "genuine" in html


def test_training_page_shows_before_after_and_small_samples(tmp_path: Path) -> None:
    doc = fake.training_doc()  # adv-train's training.json from before the wrapper
    html = render_study(_write(tmp_path / "training.json", doc)).read_text()
    for key, row in fake.judged().conditions.items():
        assert key in html and row.before.text() in html and row.after.text() in html
    assert "7/9, 95% CI" in html and "small sample" in html  # d_augmented_attack, n = 9
    assert _images(html) == 1 and "brittleness" in html
    doc["judged"] = None
    html = render_study(_write(tmp_path / "training.json", doc)).read_text()
    assert "--judge" in html and _images(html) == 0


def test_student_card_page(tmp_path: Path) -> None:
    card = fake.student_card()
    html_path = render_study(_write(tmp_path / "student-y.card.json", wrap(card)))
    assert html_path == tmp_path / "student-y.card.html"
    html = html_path.read_text()
    assert _images(html) == 3  # comparison, transfer, loss
    for row in card.transfer_teacher_to_student:
        assert row.teacher.text() in html and row.student.text() in html
    assert Rate(49, 60).text() in html and "x7.00" in html and card.weights_sha256 in html


def test_defensive_page_says_what_to_expect(tmp_path: Path) -> None:
    res = fake.defensive()
    html_path = render_study(_write(tmp_path / "dd.json", fake.legacy(res.to_dict())))
    assert html_path == study_html_path(tmp_path / "dd.json") == tmp_path / "dd.html"
    html = html_path.read_text()
    for head in res.heads.values():
        for value in (head.naive_pgd, head.logit_pgd, head.cw_l2_logits, head.probe_top1):
            assert value is not None and value.text() in html
    assert "expected to fail" in html and _images(html) == 1


def test_report_cli_renders_study_files_and_refuses_others(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    path = _write(tmp_path / "dd.json", wrap(fake.defensive()))
    out = tmp_path / "elsewhere.html"
    assert main(["report", str(path), "--out", str(out)]) == 0
    assert "11/40" in out.read_text() and str(out) in capsys.readouterr().out
    doc = fake.legacy(fake.defensive().to_dict())
    doc["schema_version"] = 2
    assert main(["report", str(_write(path, doc))]) == 2
    assert "schema version 2 cannot be read by this facerobust (it reads schema version 3; it " \
           "also converts a defensive-distillation result's schema 1)" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"x\.json: not a comparison"):
        render_study(_write(tmp_path / "x.json", {"something": 1}))
