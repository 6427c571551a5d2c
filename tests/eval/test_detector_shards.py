"""Detector units sharded by variant: the local executor gives the results and detector files
of the variants computed one after another (today's loop, rebuilt here from the public
pieces), the fingerprint is unchanged, and a killed run resumes from its finished variants."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from facerobust import models
from facerobust.cli.demo import embedded_dataset
from facerobust.detectors.base import Features
from facerobust.eval.audit import plan_units, run_audit
from facerobust.eval.config import AuditConfig, parse_config, tomllib
from facerobust.eval.detection import (
    DetectorShards,
    SavedDetector,
    evaluate_detector,
    make_detector,
)
from facerobust.eval.detection_data import build_detection_set
from facerobust.eval.experiment import Experiment
from facerobust.eval.results import RUN_SPECIFIC_KEYS, without_keys
from facerobust.eval.shards import sharded_of
from facerobust.eval.store import RunStore
from facerobust.eval.unit_kind import unit_seed
from tests.helpers.models import TinyResNet
from tests.helpers.tiny_audit import trajectory_config

VOLATILE = RUN_SPECIFIC_KEYS | {"config_fingerprint"}
UNIT = "detector-0-trajectory"


def _cfg() -> AuditConfig:
    return parse_config(tomllib.loads(trajectory_config(embedded_dataset())))


def _one_by_one(cfg: AuditConfig, out: Path) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """The variants fitted, judged and attacked one after another, as one task did before
    variants were shards: (results, detector files)."""
    exp = Experiment.prepare(cfg, store=RunStore(out), progress=False)
    dcfg, seed = cfg.detectors[0], unit_seed(cfg.run.seed, UNIT)
    data = build_detection_set(exp, dcfg, cfg.run.seed)
    model = exp.identification_model(exp.victim)
    cache: dict[str, dict[str, Features]] = {}
    results, files = [], {}
    for variant in dcfg.variant_list:
        det, fresh = (make_detector(dcfg, variant, model, cfg.run.batch_size, seed)
                      for _ in range(2))
        saved = SavedDetector(out=out / "oracle", file=f"detectors/{UNIT}-{variant}.pt",
                              model_name=exp.victim)
        results.append(evaluate_detector(det, dcfg, data, cache, seed=seed, saved=saved,
                                         fresh=fresh).to_dict())
        files[saved.file] = (saved.out / saved.file).read_bytes()
    return results, files


@pytest.mark.slow
def test_variants_are_shards_with_the_one_by_one_results_and_resume(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    monkeypatch.setattr(models, "load", lambda name, device=None: TinyResNet(
        seed=1 if name == "pooled" else 2))
    cfg, whole = _cfg(), tmp_path / "whole"
    doc = json.loads(run_audit(cfg, whole, progress=False).read_text())
    (unit,) = doc["detectors"]
    assert [r["label"] for r in unit["results"]] == ["trajectory M-cosine",
                                                      "trajectory C-l2"]
    results, files = _one_by_one(cfg, whole)
    assert without_keys(unit["results"], VOLATILE) == without_keys(results, VOLATILE)
    for rel, blob in files.items():  # the saved detectors, byte for byte
        assert (whole / rel).read_bytes() == blob
    assert not list((whole / "tensors").glob("*.shard-*"))  # parts dropped once merged

    # the fingerprint is the one of a detector unit computed whole (old run folders stay valid)
    exp = Experiment.prepare(cfg, store=RunStore(whole), progress=False)
    planned = {k: (fp, fn) for k, fp, fn in plan_units(cfg, exp, whole)}
    fp, fn = planned[UNIT]
    assert fp == exp.fingerprint("detector", asdict(cfg.detectors[0]))
    shards = sharded_of(fn)
    assert shards is not None and shards.bounds() == [(0, 1), (1, 2)]

    # killed while fitting the second variant: the rerun fits only that one
    calls, killing, real = [], [True], DetectorShards.run

    def run(self: DetectorShards, index: int) -> Any:
        calls.append(index)
        if killing[0] and index == 1:
            raise KeyboardInterrupt
        return real(self, index)

    monkeypatch.setattr(DetectorShards, "run", run)
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        run_audit(cfg, out, progress=False)
    assert len(list((out / "tensors").glob(f"{UNIT}.shard-*"))) == 1
    killing[0] = False
    calls.clear()
    resumed = json.loads(run_audit(cfg, out, progress=False).read_text())
    assert calls == [1]
    assert f"{UNIT}: reusing 1 of 2 finished shards" in (out / "audit.log").read_text()
    assert without_keys(resumed, VOLATILE) == without_keys(doc, VOLATILE)
    for rel, blob in files.items():  # the first variant's file written from its saved part
        assert (out / rel).read_bytes() == blob
