"""Detectors fitted on one dataset's people and judged on another's
(``[identification] fit_dataset`` / ``fit_identities``): validated keys, the joint split, the
train/val/test rows, an end-to-end tiny audit, and the real CFP / colour-LFW sides."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from facerobust import models
from facerobust.cli.demo import embedded_dataset
from facerobust.core.precision import crafting
from facerobust.core.splits import identity_split
from facerobust.data.cfp import lfw_overlap
from facerobust.data.sources import open_dataset
from facerobust.eval import detection_data
from facerobust.eval.audit import run_audit
from facerobust.eval.config import AuditConfig, parse_config, tomllib
from facerobust.eval.datasource import DataSource
from facerobust.eval.detection_data import DetectionShards, split_rows
from facerobust.eval.experiment import Experiment
from facerobust.eval.fit_split import joint_split
from facerobust.eval.tasks import score_goal
from tests.helpers.models import TinyResNet
from tests.helpers.tiny_audit import trajectory_config

SIZES = {"identities": 8, "images_per_identity": 8, "gallery_per_identity": 4,
         "min_images": 8}


def _cfg(root: str, **ident: object) -> AuditConfig:
    doc = tomllib.loads(trajectory_config(root))
    doc["identification"].update(SIZES, **ident)
    doc["identification"].pop("probes")
    doc["detector"][0].update(epsilon="16/255", steps=5)  # the tiny model needs a real attack
    return parse_config(doc)


@pytest.mark.parametrize(("ident", "message"), [
    ({"fit_identities": 5}, "fit_identities: needs identification.fit_dataset and >= 2"),
    ({"fit_dataset": "cfp"}, "fit_identities: needs identification.fit_dataset and >= 2"),
    ({"fit_dataset": "cfp", "fit_identities": 1}, r"fit_identities: needs .* got fit_datas"),
    ({"fit_dataset": "../cfp", "fit_identities": 5}, "fit_dataset: '../cfp' is not a dataset"),
    ({"fit_dataset": "cfp", "fit_identities": 5, "head": "h.pt"}, "no saved head"),
    ({"fit_dataset": "cfp", "fit_identities": -1}, "fit_identities: must be a non-negative"),
])
def test_fit_keys_are_validated_with_the_key_named(ident: dict[str, object],
                                                   message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _cfg("/data/x", **ident)


def test_fit_dataset_must_differ_from_the_judged_one_and_needs_a_detector() -> None:
    doc = tomllib.loads(trajectory_config("/x"))
    doc["data"] = {"dataset": "cfp"}
    doc["identification"].update(fit_dataset="cfp", fit_identities=5)
    with pytest.raises(ValueError, match="'cfp' is data.dataset itself"):
        parse_config(doc)
    doc["data"] = {"dataset": "lfw-color"}
    del doc["detector"]
    with pytest.raises(ValueError, match="only detectors use it; add a \\[\\[detector\\]\\]"):
        parse_config(doc)


def test_fit_keys_enter_the_fingerprint_only_when_set() -> None:
    plain = _cfg("/x")
    fitted = _cfg("/x", fit_dataset="cfp", fit_identities=5)
    assert plain.unit_fingerprint("detector") != fitted.unit_fingerprint("detector")
    bf16 = replace(plain, run=replace(plain.run, precision="bf16"))
    assert bf16.unit_fingerprint("detection-data") != plain.unit_fingerprint("detection-data")
    assert bf16.unit_fingerprint("detector") == plain.unit_fingerprint("detector")


def test_fit_people_train_and_validate_the_others_are_the_test() -> None:
    labels = np.repeat(np.arange(10), 3)
    parts = split_rows(labels, 0, frozenset(range(6, 10)))
    assert set(parts) == {"train", "val", "test"}  # no id-* split: all judged people held out
    assert set(labels[parts["train"]]) | set(labels[parts["val"]]) <= set(range(6, 10))
    assert set(labels[parts["test"]]) == set(range(6))
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(30))
    assert len(parts["train"]) == round(0.6 * 12)


def _fit_folder(tmp: Path, judged: list[str]) -> Path:
    """A folders-layout dataset ``fitset`` of demo people the judged split does not hold."""
    demo = embedded_dataset()
    people = open_dataset(demo).people
    folder = tmp / "fitset"
    others = [n for n, f in sorted(people.items()) if len(f) >= 8 and n not in judged]
    for name in others[:8]:
        (folder / name).mkdir(parents=True)
        for f in people[name][:8]:
            (folder / name / f.name).symlink_to(f)
    return folder


def test_a_tiny_audit_fits_on_the_fit_people_and_judges_the_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    monkeypatch.setattr(models, "load", lambda name, device=None: TinyResNet(seed=1))
    demo = str(embedded_dataset())
    cfg = _cfg(demo, fit_dataset="fitset", fit_identities=8)
    judged = identity_split(open_dataset(demo).people, identities=8, images=8, gallery=4,
                            min_images=8, seed=cfg.run.seed).names
    _fit_folder(tmp_path, judged)
    monkeypatch.setenv("FACEROBUST_DATA", str(tmp_path))
    out = tmp_path / "run"
    doc = json.loads(run_audit(cfg, out, progress=False).read_text())
    split = json.loads((out / "protocol" / "identification.json").read_text())
    assert split["names"][:8] == judged and all(n.startswith("fitset:") for n in
                                                split["names"][8:])
    assert all(Path(p).is_absolute() for p in split["train"][32:])  # the other dataset's
    (unit,) = doc["detectors"]
    probes = unit["data"]["n_probes"]
    assert set(probes) == {"train", "val", "test"} and probes["test"] <= 8 * 4
    for res in unit["results"]:
        assert res["macro_auc_heldout_identities"] == res["macro_auc"]
        assert any("every judged identity is held out" in n for n in res["notes"])


def test_a_fit_dataset_resolving_to_the_judged_folder_is_refused() -> None:
    demo = embedded_dataset()
    cfg = _cfg(str(demo), fit_dataset="fitset", fit_identities=4)
    with pytest.raises(ValueError, match="'fitset' resolved to the judged dataset's own"):
        joint_split(cfg, open_dataset(demo), data=demo)


@pytest.mark.data
def test_cfp_fitting_people_are_not_the_judged_colour_lfw_people() -> None:
    doc = tomllib.loads(trajectory_config("/x"))
    doc["data"] = {"dataset": "lfw-color"}
    doc["identification"].update(identities=100, images_per_identity=6,
                                 gallery_per_identity=3, min_images=6, fit_dataset="cfp",
                                 fit_identities=200)
    cfg = parse_config(doc)
    split = joint_split(cfg, DataSource("lfw-color").open())
    fit = [n.split(":", 1)[1] for n in split.names if n.startswith("cfp:")]
    assert len(fit) == 200 and len(split.names) == 300
    overlap = lfw_overlap(Path(os.environ["FACEROBUST_DATA"]) / "cfp")
    assert not set(fit) & overlap
    assert len(set(split.probe_paths)) == len(split.probe_paths)


def test_bf16_detector_data_keeps_only_adversarials_judged_in_float32(
        monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    monkeypatch.setattr(models, "load", lambda name, device=None: TinyResNet(seed=1))
    cfg = _cfg(str(embedded_dataset()), identities=16)
    cfg = replace(cfg, run=replace(cfg.run, precision="bf16"))
    exp = Experiment.prepare(cfg, progress=False)
    used: list[str] = []

    def spy(precision: str, device: torch.device) -> object:
        used.append(precision)
        return crafting(precision, device)

    monkeypatch.setattr(detection_data, "crafting", spy)
    shards = DetectionShards(exp, cfg.detectors[0], cfg.run.seed)
    untargeted, targeted = shards.samples
    part = shards.run(0)
    found = 0
    for (_, goal), job in zip(shards.jobs, part["jobs"], strict=True):
        setup = (untargeted if goal == "untargeted" else targeted).take()
        model, ref = setup.refs[exp.victim]
        if len(job["source"]):
            fooled, _ = score_goal(model, goal, job["adv"], ref[job["source"]], 8)
            assert fooled.all()  # a float32 forward agrees with every kept adversarial
        found += len(job["source"])
    assert found > 0 and used == ["bf16"] * len(shards.jobs)  # BIM crafts in bfloat16
