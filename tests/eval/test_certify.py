"""The ``[[certify]]`` unit: its config keys, the rates a group summarises from per-probe
certificates, the typed results round trip, the report section, and the command line."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from facerobust.cli import main
from facerobust.core.stats import Rate
from facerobust.defenses.smoothing import Certificate
from facerobust.eval.certify_config import CertifyConfig, parse_certify
from facerobust.eval.certify_unit import summarise
from facerobust.eval.commands import config_to_toml
from facerobust.eval.config import AuditConfig, parse_config, parse_toml
from facerobust.eval.kinds.certify import sentences as certify_sentences
from facerobust.eval.results_certify import CertifyUnit
from facerobust.system.certify import ProbeCertificate


def probe(label: int | None, radius: float | None, expected: int = 1,
          flipped: bool | None = None) -> ProbeCertificate:
    cert = Certificate(label, radius, 0.9, 90, 100, 1 if label is None else label, 0.5)
    return ProbeCertificate(expected, cert, "x", flipped, None if flipped is None else 0.1)


def test_parse_certify_keys_and_errors() -> None:
    cfg = parse_certify({"sigma": 0.25, "n0": 10, "n": 50, "alpha": 0.01,
                         "goal": "identification", "samples": 3, "radii": [0, 0.5]}, "c")
    assert cfg.sigmas == (0.25,) and cfg.radii == (0.0, 0.5) and cfg.n == 50
    assert parse_certify({}, "c") == CertifyConfig()
    for table, message in (({"sigma": [0.25, 0.25]}, r"c\.sigma: noise levels must be > 0 "
                                                      "and different"),
                           ({"sigma": -1}, r"c\.sigma"),
                           ({"alpha": 1.5}, r"c\.alpha: must be in \(0, 1\)"),
                           ({"n": 0}, r"c\.n: must be an integer >= 1"),
                           ({"goal": "dodging"}, r"c\.goal: 'dodging' is not one of"),
                           ({"radii": ["a"]}, r"c\.radii\[0\]: must be a number"),
                           ({"sigmas": 1}, r"unknown key c\.sigmas")):
        with pytest.raises(ValueError, match=message):
            parse_certify(table, "c")


def test_audit_config_reads_certify_tables_and_writes_them_back() -> None:
    cfg = parse_config({"certify": [{"sigma": [0.12, 0.5], "n": 200, "samples": 4}]})
    assert cfg.certify[0].sigma == (0.12, 0.5)
    assert parse_config(parse_toml(config_to_toml(cfg))) == cfg
    with pytest.raises(ValueError, match=r"certify\[0\]\.goal: 'identification' needs"):
        parse_config({"certify": [{"goal": "identification"}]})
    with pytest.raises(ValueError, match=r"write .*\[\[certify\]\]"):
        parse_config({"certify": {"sigma": 0.25}})
    assert AuditConfig().certify == ()


def test_summarise_counts_certified_correct_abstain_and_flips() -> None:
    probes = [probe(1, 0.6, flipped=False), probe(1, 0.2, flipped=False), probe(None, None),
              probe(0, 0.4, flipped=True)]  # the last: certified, but wrong
    group = summarise("genuine", "accept", probes, Rate(3, 4), (0.0, 0.25, 0.5, 1.0))
    assert [r.k for r in group.certified] == [2, 1, 1, 0]
    assert group.radius == [0.6, 0.2, None, None] and group.abstain == [False, False, True,
                                                                          False]
    assert (group.abstained.k, group.smoothed_correct.k, group.attacked,
            group.attack_flips) == (1, 2, 3, 1)
    assert group.curve[0] == 0.5 and group.curve[-1] == 0.0
    assert group.curve == sorted(group.curve, reverse=True)
    assert group.seconds_per_certificate == pytest.approx(0.5)
    unit = CertifyUnit(key="certify-0-s0.25-m", model="m", goal="verification", sigma=0.25,
                       n0=10, n=100, alpha=0.001, radii=[0.0, 0.25, 0.5, 1.0], attack="none",
                       groups=[group])
    again = CertifyUnit.from_dict(json.loads(json.dumps(unit.to_dict())))
    assert again == unit and again.attack_flips == 1
    (sentence,) = certify_sentences(SimpleNamespace(certify=[unit]))  # type: ignore[arg-type]
    assert "certified at L2 radius 0.5: genuine 25.0% (1/4" in sentence
    assert sentence.endswith("flips of certified decisions: 1.")
    row = unit.to_dict()["groups"][0]
    assert row["certified"][0] == {"k": 2, "n": 4, "rate": 0.5, "ci95": list(Rate(2, 4).ci95)}


def test_certify_command_line_checks_settings_first(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["certify", "--sigma", "0.25,-1", "--out", str(out)]) == 2
    assert "certify.sigma: noise levels must be > 0" in capsys.readouterr().err
    assert main(["certify", "--radii", "0,x", "--out", str(out)]) == 2
    assert "expected comma-separated numbers" in capsys.readouterr().err
    assert main(["certify", "--n", "0", "--out", str(out)]) == 2
    assert "certify.n: must be an integer >= 1" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.data
@pytest.mark.slow
def test_certify_is_a_one_unit_audit_with_a_report(lfw_root: Path, tmp_path: Path) -> None:
    pytest.importorskip("dlib")
    out = tmp_path / "run"
    assert main(["certify", "--dataset", "lfw-gray", "--data", str(lfw_root.parent),
                 "--sigma", "0.25", "--n0", "10", "--n", "40", "--samples", "2",
                 "--attack-steps", "2", "--attack-eot", "2", "--out", str(out),
                 "--no-progress"]) == 0
    doc = json.loads((out / "results.json").read_text())
    (unit,) = doc["certify"]
    assert [g["name"] for g in unit["groups"]] == ["genuine", "impostor"]
    for g in unit["groups"]:
        assert g["n"] == 2 and len(g["radius"]) == 2 and g["attack_flips"] == 0
        assert [c["n"] for c in g["certified"]] == [2, 2, 2, 2]
    html = (out / "report.html").read_text()
    assert 'id="certify-table"' in html and "certified at r=0.5" in html
    assert (out / "figures" / f"{unit['key']}.png").is_file()
    assert (out / "tables" / "certify.csv").is_file()


def test_victim_weights_load_fit_and_change_every_fingerprint(tmp_path: Path) -> None:
    import torch

    from facerobust.eval.experiment import load_weights
    from tests.helpers.models import PooledPixels

    plain = parse_config({})
    tuned = parse_config({"models": {"victim_weights": str(tmp_path / "model.pt")}})
    assert plain.unit_fingerprint("clean", "m") != tuned.unit_fingerprint("clean", "m")
    assert "victim_weights" not in config_to_toml(plain)
    assert parse_config(parse_toml(config_to_toml(tuned))) == tuned
    model = PooledPixels()
    with pytest.raises(FileNotFoundError, match="models.victim_weights: no such file"):
        load_weights(model, tmp_path / "model.pt")
    torch.save({"dummy": torch.tensor(2.0)}, tmp_path / "model.pt")
    load_weights(model, tmp_path / "model.pt")
    assert float(model.dummy) == 2.0
    torch.save({"other": torch.zeros(3)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="bad.pt does not fit the victim"):
        load_weights(model, tmp_path / "bad.pt")


def test_identification_unit_certifies_the_heads_top_class() -> None:
    import numpy as np
    import torch

    from facerobust.eval.certify_unit import certify_unit
    from facerobust.models.heads import IdentificationModel
    from tests.helpers.models import PooledPixels

    gen = torch.Generator().manual_seed(0)
    cells = 0.35 + 0.3 * torch.rand(3, 1, 8, 8, generator=gen)
    chips = torch.nn.functional.interpolate(cells, size=150, mode="nearest").expand(3, 3, 150,
                                                                                     150)
    embedder = PooledPixels()
    with torch.no_grad():
        emb = embedder(chips)
    head = torch.nn.Linear(64, 3, bias=False)
    head.weight.data = 20 * emb  # the nearest-template head: each chip is its own class
    model = IdentificationModel(embedder, head, names=["a", "b", "c"]).eval()
    exp = SimpleNamespace(victim="m", chips=SimpleNamespace(chips=chips),
                          probe_rows=lambda: (np.arange(3), np.arange(3)),
                          identification_model=lambda _name: model,
                          embeddings=lambda _name: emb)
    ccfg = parse_certify({"goal": "identification", "n0": 10, "n": 60, "samples": 3,
                          "attack_steps": 2, "attack_eot": 2}, "c")
    unit = certify_unit(exp, ccfg, 0, 0.12, seed=1)  # type: ignore[arg-type]
    (group,) = unit.groups
    assert group.name == "identification" and group.base_correct.k == 3
    assert group.smoothed_correct.k == 3 and group.certified[0].k == 3
    assert group.attacked == 3 and group.attack_flips == 0
    assert unit.key == "certify-0-s0.12-m"
