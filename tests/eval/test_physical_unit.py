"""The ``[[physical]]`` audit unit (issue 27): its keys, its errors, and a real audit run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facerobust.cli import main
from facerobust.eval.commands import config_to_toml
from facerobust.eval.config import load_config, parse_config, parse_toml
from facerobust.eval.physical_config import parse_physical

ROOT = Path(__file__).resolve().parents[2]


def test_physical_tables_parse_round_trip_and_name_bad_keys() -> None:
    cfg = load_config(ROOT / "examples/physical.toml")
    assert [(p.accessory, p.goal) for p in cfg.physical] == [
        ("eyeglasses", "dodging"), ("eyeglasses", "impersonation")]
    assert parse_config(parse_toml(config_to_toml(cfg))) == cfg
    for table, match in (({"accessory": "hat"}, r"physical\[0\].accessory: 'hat'"),
                         ({"goal": "steal"}, r"physical\[0\].goal"),
                         ({"photos": 2}, r"physical\[0\].photos: must be an integer >= 3"),
                         ({"universal": "yes"}, r"physical\[0\].universal: must be true"),
                         ({"stepz": 3}, r"unknown key physical\[0\].stepz"),
                         ({"adaptive": 1.0}, r"physical\[0\].adaptive: needs physical\[0\]"
                                             r".detectors"),
                         ({"adaptive": -1}, r"physical\[0\].adaptive: must be a number >= 0"),
                         ({"detectors": ["none.pt"]}, r"physical\[0\].detectors: 'none.pt' is "
                                                      r"not a detector file")):
        with pytest.raises(ValueError, match=match):
            parse_physical(table, "physical[0]")
    with pytest.raises(ValueError, match=r"\[\[physical\]\]"):
        parse_config({"physical": {"accessory": "mask"}})


def test_physical_detectors_and_adaptive_keys_round_trip(tmp_path: Path) -> None:
    det = tmp_path / "squeeze.pt"
    det.write_bytes(b"x")  # only its existence is checked here; loading comes with the unit
    pcfg = parse_physical({"detectors": [str(det)], "adaptive": 0.5}, "physical[0]")
    assert pcfg.detectors == (str(det),) and pcfg.adaptive == 0.5
    cfg = parse_config({"physical": [{"detectors": [str(det)], "adaptive": 0.5}]})
    assert parse_config(parse_toml(config_to_toml(cfg))) == cfg


def test_an_audit_with_a_physical_unit_reports_it(tmp_path: Path) -> None:
    pytest.importorskip("dlib")
    config = tmp_path / "physical.toml"
    config.write_text('[data]\ndataset = "lfw-demo"\nclean_pairs_per_fold = 10\n'
                      '[models]\nvictim = "dlib-resnet"\n'
                      '[[physical]]\naccessory = "eyeglasses"\nsteps = 2\neot_samples = 1\n'
                      'attackers = 1\nphotos = 3\nheldout = 1\n')
    out = tmp_path / "run"
    assert main(["audit", str(config), "--out", str(out), "--no-progress"]) == 0
    doc = json.loads((out / "results.json").read_text())
    (unit,) = doc["physical"]
    assert unit["summary"]["accessory"] == "eyeglasses" and unit["summary"]["success"]["n"] >= 1
    row = unit["rows"][0]
    assert (out / row["printable"]).is_file() and (out / row["pdf"]).is_file()
    assert 'id="physical-table"' in (out / "report.html").read_text()
