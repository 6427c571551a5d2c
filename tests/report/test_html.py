from __future__ import annotations

import base64
import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from facerobust.eval.stats import Rate
from facerobust.report import render_report
from facerobust.report.page import pct


def test_report_renders_every_section_with_embedded_figures(results_file: Path) -> None:
    html_path = render_report(results_file)
    html = html_path.read_text()
    for section in ["verdict", "summary", "clean", "accuracy", "attacks", "roc", "transfer",
                    "minimal", "defenses", "skipped", "method", "environment"]:
        assert f'id="{section}"' in html, section
    images = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert len(images) >= 6
    assert all(src.startswith("data:image/png;base64,") for src in images), "self-contained"
    assert "http://" not in html and "https://" not in html
    assert (results_file.parent / "figures" / "transfer.png").stat().st_size > 1000


def test_numbers_in_html_equal_results_json(results_file: Path) -> None:
    results = json.loads(results_file.read_text())
    html = render_report(results_file).read_text()
    for sentence in results["summary"]["sentences"]:
        assert sentence in html
    for atk in results["attacks"]:
        for rate in atk["success"]:
            assert f"<b>{Rate.from_dict(rate).text()}</b>" in html
    for row in results["summary"]["verdicts"]:
        assert Rate.from_dict(row["success"]).text() in html and row["verdict"] in html
    clean = results["clean"]["dlib-resnet"]
    assert pct(clean["accuracy"]) in html
    assert "95.7% (287/300, 95% CI 93-97%)" in html  # TAR@FAR with its interval
    assert "/x/bad.jpg" in html and "no face found" in html
    # the summary quotes the 2/255 success of the best dodging attack with n and its CI
    assert "At 2/255 per pixel, PGD evades recognition (dodging) in 75.0% (3/4, 95% CI " \
           "30-95%, small sample) of attempts." in html
    # the defense table shows every column and the worst case, flags as sentences
    table = html[html.index('id="defense-table"'):]
    assert "worst case" in table and "direct" in table
    assert "Gradients through the defense are zero." in table and ">any<" not in table
    assert "closed-set identification over 20 identities" in html.lower()


def test_report_refuses_another_schema_version(results_file: Path) -> None:
    doc = json.loads(results_file.read_text())
    doc["schema_version"] = 1
    results_file.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="results schema version 1 cannot be read by this "
                                         "facerobust \\(it reads schema version 3"):
        render_report(results_file)
    doc["schema_version"] = 4
    results_file.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="results schema version 4 cannot be read by this "
                                         "facerobust \\(it reads schema version 3"):
        render_report(results_file)


def test_report_never_embeds_files_outside_its_run_folder(results_file: Path,
                                                          tmp_path: Path) -> None:
    secret = tmp_path.parent / "secret.png"
    secret.write_bytes(b"\x89PNG not really")
    doc = json.loads(results_file.read_text())
    (results_file.parent / "examples").mkdir(exist_ok=True)
    (results_file.parent / "examples" / "link.png").symlink_to(secret)
    doc["attacks"][0]["examples"] = "../secret.png"
    doc["attacks"][1]["examples"] = "examples/link.png"  # a symlink out of the run folder
    results_file.write_text(json.dumps(doc))
    html = render_report(results_file).read_text()
    assert 'id="examples"' not in html
    assert base64.b64encode(secret.read_bytes()).decode() not in html
    doc["attacks"][1]["examples"] = "/etc/passwd"
    results_file.write_text(json.dumps(doc))
    assert 'id="examples"' not in render_report(results_file).read_text()


def test_csv_tables_match_json(results_file: Path) -> None:
    render_report(results_file)
    results = json.loads(results_file.read_text())
    rows = list(csv.DictReader((results_file.parent / "tables" / "attacks.csv").open()))
    victim_rows = [r for r in rows if r["role"] == "white-box"]
    assert len(victim_rows) == sum(len(a["epsilons"]) for a in results["attacks"])
    first = results["attacks"][0]["success"][1]
    assert float(victim_rows[1]["rate"]) == first["rate"]
    assert int(victim_rows[1]["k"]) == first["k"] and int(victim_rows[1]["n"]) == first["n"]
    assert float(victim_rows[1]["ci95_low"]) == first["ci95"][0]


def test_missing_or_bad_results_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.json"):
        render_report(tmp_path / "nope.json")
    bad = tmp_path / "results.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        render_report(bad)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (.ci/run installs it)")
def test_report_in_headless_chromium(results_file: Path, tmp_path: Path) -> None:
    html_path = render_report(results_file)
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=5000"]
    dom = subprocess.run([*flags, "--dump-dom", html_path.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, "no body in the rendered DOM"
    attrs = dict(re.findall(r'(data-[a-z-]+)="(\d+)"', body.group(1)))
    assert int(attrs["data-images"]) >= 6
    assert attrs["data-broken-images"] == "0"
    assert attrs["data-script-errors"] == "0"
    shot = tmp_path / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,2400",
                    html_path.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 20_000, "screenshot looks empty"
