"""The minimal-perturbation unit: each sample's smallest successful budget (RobFR's metric)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from facerobust.attacks.threat import format_epsilon
from facerobust.eval.config import AuditConfig
from facerobust.eval.experiment import Experiment
from facerobust.eval.results import MinimalUnit
from facerobust.eval.results_audit import Results
from facerobust.eval.shards import ShardedUnit
from facerobust.eval.unit_kind import PlannedUnit, Stored, UnitKind, unit_seed
from facerobust.eval.units import MinimalShards


def plan(cfg: AuditConfig, exp: Experiment, _out: Path) -> list[PlannedUnit]:
    if not cfg.minimal.enabled:
        return []
    key = f"minimal-{cfg.models.victim}"
    shards = MinimalShards(exp, unit_seed(cfg.run.seed, key))
    return [(key, exp.fingerprint("minimal", asdict(cfg.minimal)),
             ShardedUnit(shards.bounds, shards.run, shards.merge))]


def collect(cfg: AuditConfig, units: Stored) -> MinimalUnit | None:
    stored = units.get(f"minimal-{cfg.models.victim}")
    return None if stored is None else MinimalUnit.from_dict(stored, where="minimal")


def sentences(results: Results) -> list[str]:
    m = results.minimal
    if m is None or m.median is None:
        return []
    return [f"Half of {m.n} samples fall to {m.attack.upper()} at "
            f"{format_epsilon(m.median, m.norm)} ({m.norm}) or less."]


MINIMAL = UnitKind("minimal", "minimal-", "minimal", plan, collect, sentences)
