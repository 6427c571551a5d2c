"""Shards of attack / minimal units (and the rule for defense, fusion and detector units): seeds
and bounds, the config key, and a killed run that resumes from the shards it had finished, to
the results of an uninterrupted run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from facerobust import models
from facerobust.cli.demo import embedded_dataset
from facerobust.eval.attack_unit import AttackShards
from facerobust.eval.audit import run_audit
from facerobust.eval.config import parse_config, tomllib
from facerobust.eval.results import RUN_SPECIFIC_KEYS, without_keys
from facerobust.eval.shards import shard_bounds, shard_seed, sharding
from tests.helpers.models import PooledPixels
from tests.helpers.tiny_audit import CONFIG

VOLATILE = RUN_SPECIFIC_KEYS | {"config_fingerprint"}


def test_shard_seeds_and_bounds() -> None:
    assert shard_seed(7, 0) == 7  # a one-shard unit is seeded as before sharding
    seeds = [shard_seed(7, i) for i in range(4)]
    assert len(set(seeds)) == 4 and seeds == [shard_seed(7, i) for i in range(4)]
    assert shard_seed(8, 1) != shard_seed(7, 1)
    assert shard_bounds(8, 3) == [(0, 3), (3, 6), (6, 8)]
    assert shard_bounds(3, 3) == [(0, 3)] and shard_bounds(0, 3) == []


@pytest.mark.parametrize("value", [0, -2, 1.5, True, "64"])
def test_shard_size_is_validated(value: Any) -> None:
    with pytest.raises(ValueError, match=rf"run\.shard_size: must be an integer >= 1, got "
                                         rf"{value!r}"):
        parse_config({"run": {"shard_size": value}})
    assert parse_config({}).run.shard_size == 128


def test_shard_size_is_part_of_sharded_units_fingerprints() -> None:
    small, big = (parse_config({"run": {"shard_size": n}}) for n in (4, 128))
    assert small.unit_fingerprint("attack") != big.unit_fingerprint("attack")
    assert small.unit_fingerprint("minimal") != big.unit_fingerprint("minimal")
    assert small.unit_fingerprint("clean") == big.unit_fingerprint("clean")


def test_units_of_one_shard_keep_their_fingerprint() -> None:
    # defense, fusion and detector units of at most shard_size samples are one shard,
    # computed as before they were sharded: older run folders stay valid
    assert sharding(16, 128) == [] and sharding(128, 128) == []
    assert sharding(129, 128) == [{"shard_size": 128}]


def _cfg() -> Any:
    text = CONFIG.format(root=embedded_dataset()).replace("batch_size = 8",
                                                          "batch_size = 8\nshard_size = 3")
    return parse_config(tomllib.loads(text))


@pytest.mark.slow
def test_killed_sharded_unit_resumes_from_its_finished_shards(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    monkeypatch.setattr(models, "load", lambda name, device=None: PooledPixels())
    whole = run_audit(_cfg(), tmp_path / "whole", progress=False)
    calls: list[tuple[str, int]] = []
    killing = [True]
    real = AttackShards.run
    unit = "attack-pooled-pgd-linf-untargeted"  # 8 probes: shards of 3, 3 and 2

    def run(self: AttackShards, index: int) -> Any:
        calls.append((self.key, index))
        if killing[0] and self.key == unit and index == 2:
            raise KeyboardInterrupt  # killed while computing the last shard
        return real(self, index)

    monkeypatch.setattr(AttackShards, "run", run)
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        run_audit(_cfg(), out, progress=False)
    assert [i for k, i in calls if k == unit] == [0, 1, 2]
    assert len(list((out / "tensors").glob(f"{unit}.shard-*"))) == 2
    killing[0] = False
    calls.clear()
    run_audit(_cfg(), out, progress=False)
    assert [i for k, i in calls if k == unit] == [2]
    assert f"{unit}: reusing 2 of 3 finished shards" in (out / "audit.log").read_text()
    assert not list((out / "tensors").glob("*.shard-*"))  # parts dropped once merged
    doc = json.loads((out / "results.json").read_text())
    assert without_keys(doc, VOLATILE) == without_keys(json.loads(whole.read_text()), VOLATILE)
    assert next(a for a in doc["attacks"] if a["key"] == "pgd-linf-untargeted")["n"] == 8


def test_precision_is_part_of_crafting_units_fingerprints_only() -> None:
    fp32, bf16 = (parse_config({"run": {"precision": p}}) for p in ("fp32", "bf16"))
    assert parse_config({}).unit_fingerprint("attack") == fp32.unit_fingerprint("attack")
    for kind in ("attack", "defense", "minimal"):
        assert fp32.unit_fingerprint(kind) != bf16.unit_fingerprint(kind)
    assert fp32.unit_fingerprint("clean") == bf16.unit_fingerprint("clean")
    with pytest.raises(ValueError, match=r"run\.precision: precision must be one of"):
        parse_config({"run": {"precision": "half"}})


@pytest.mark.slow
def test_bf16_crafting_reuses_clean_units_and_judges_like_fp32(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    monkeypatch.setattr(models, "load", lambda name, device=None: PooledPixels())
    out = tmp_path / "run"
    fp32 = json.loads(run_audit(_cfg(), out, progress=False).read_text())
    bf16_cfg = parse_config(tomllib.loads(CONFIG.format(root=embedded_dataset()).replace(
        "batch_size = 8", "batch_size = 8\nshard_size = 3\nprecision = \"bf16\"")))
    bf16 = json.loads(run_audit(bf16_cfg, out, progress=False).read_text())
    total, done = (int(v) for v in re.findall(r"(\d+) units, (\d+) already done",
                                              (out / "audit.log").read_text())[-1])
    # the 4 attack units, the minimal search (PGD) and the defense unit are crafted again
    assert (total, done) == (len(fp32["attacks"]) + 2 + len(fp32["clean"]),
                             len(fp32["clean"]))
    assert fp32["clean"] == bf16["clean"]  # clean units reused as they were
    for a32, a16 in zip(fp32["attacks"], bf16["attacks"], strict=True):
        assert a16["key"] == a32["key"] and a16["n"] == a32["n"]
        for r32, r16 in zip(a32["success"], a16["success"], strict=True):
            assert abs(r32["k"] - r16["k"]) <= 1, (a32["key"], r32, r16)
        for doc in (a32, a16):  # success at a budget includes every smaller budget's
            order = sorted(range(len(doc["epsilons"])), key=doc["epsilons"].__getitem__)
            ks = [doc["success"][i]["k"] for i in order]
            assert ks == sorted(ks)
            assert all(s["k"] >= f["k"] for s, f in
                       zip(doc["success"], doc["full_budget_success"], strict=True))
    m32, m16 = fp32["minimal"], bf16["minimal"]  # the search crafted in bf16, judged in fp32
    assert abs(m32["found"]["k"] - m16["found"]["k"]) <= 1 and m16["n"] == m32["n"]
