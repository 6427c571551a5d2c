"""``facerobust report --compare``: every shared rate with A, B, the difference and its test;
rates present in one run only listed as such."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest

from facerobust.cli import main
from facerobust.eval.results_file import write_result_file
from facerobust.eval.run_compare import RunComparison, two_proportion_test
from facerobust.eval.stats import Rate
from facerobust.report.compare import compare_results
from tests.report.conftest import make_typed


def _pair() -> tuple:
    a = make_typed()
    attacks = list(a.attacks)
    # B: dodging success 2/255 drops from 3/4 to 0/4 (not significant at n = 4); the clean
    # TAR of the victim drops from 287/300 to 200/300 (significant)
    attacks[0] = dataclasses.replace(attacks[0], success=[Rate(1, 4), Rate(0, 4), Rate(1, 4)])
    clean = dict(a.clean)
    clean["dlib-resnet"] = dataclasses.replace(clean["dlib-resnet"], tar_at_far=Rate(200, 300))
    b = dataclasses.replace(a, attacks=attacks, clean=clean, minimal=None)
    return a, b


def test_compare_results_tests_each_shared_rate() -> None:
    a, b = _pair()
    c = compare_results(a, b)
    rows = {r.label: r for r in c.rows}
    tar = rows["clean dlib-resnet: TAR at FAR 0.001"]
    assert tar.significant and tar.test == "z-test" and tar.p_value is not None
    assert tar.difference == pytest.approx(200 / 300 - 287 / 300)
    dodge = rows["PGD linf dodging @ 2/255 on dlib-resnet"]
    assert (dodge.a, dodge.b) == (Rate(3, 4), Rate(0, 4))
    assert dodge.test == "fisher" and not dodge.significant
    assert "minimal PGD linf dodging: found" in c.only_a and not c.only_b


def test_two_proportion_test_matches_known_values() -> None:
    p, test = two_proportion_test(Rate(50, 100), Rate(50, 100))
    assert test == "z-test" and p == pytest.approx(1.0)
    p, test = two_proportion_test(Rate(0, 8), Rate(8, 8))  # expected counts 4: Fisher
    assert test == "fisher" and p == pytest.approx(2 / 12870)  # 2 / C(16, 8)


def test_report_compare_cli_writes_page_json_and_csv(tmp_path: Path) -> None:
    a, b = _pair()
    run_a = write_result_file(tmp_path / "a" / "results.json", a)
    write_result_file(tmp_path / "b" / "results.json", b)
    out = tmp_path / "cmp"
    assert main(["report", "--compare", str(run_a), str(tmp_path / "b"), "--out", str(out)]) == 0
    html = (out / "compare.html").read_text()
    assert "Fisher&#39;s exact test" in html and "z-test" in html and "Only in A" in html
    assert "http://" not in html and "https://" not in html
    doc = json.loads((out / "compare.json").read_text())
    assert doc["kind"] == "run-comparison" and doc["schema_version"] == 3
    typed = RunComparison.from_dict(doc)
    assert any(r.significant for r in typed.rows) and not all(r.significant for r in typed.rows)
    rows = list(csv.DictReader((out / "compare.csv").open()))
    assert len(rows) == len(typed.rows) + len(typed.only_a) + len(typed.only_b)
    assert main(["report", str(out / "compare.json")]) == 0  # a compare.json renders too
