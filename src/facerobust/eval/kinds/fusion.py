"""Fusion units: several verification models as one score-level verifier, attacked."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from facerobust.eval.config import AuditConfig
from facerobust.eval.experiment import Experiment
from facerobust.eval.results import FusionUnit
from facerobust.eval.results_audit import Results
from facerobust.eval.results_file import Verdict, verdict
from facerobust.eval.shards import sharding
from facerobust.eval.unit_kind import PlannedUnit, Stored, UnitKind, unit_seed
from facerobust.eval.units import FusionShards, sharded


def plan(cfg: AuditConfig, exp: Experiment, _out: Path) -> list[PlannedUnit]:
    units: list[PlannedUnit] = []
    for i, fcfg in enumerate(cfg.fusions):
        key = f"fusion-{i}"
        units.append((key, exp.fingerprint("fusion", asdict(fcfg),
                                         *sharding(fcfg.samples, cfg.run.shard_size)),
                      sharded(FusionShards(exp, fcfg, unit_seed(cfg.run.seed, key)))))
    return units


def collect(_cfg: AuditConfig, units: Stored) -> list[FusionUnit]:
    return [FusionUnit.from_dict(v, where=k) for k, v in units.items()]


def sentences(results: Results) -> list[str]:
    return [f"Fusion {' + '.join(f.models)}: the white-box attack at {f.epsilon_labels[-1]} "
            f"succeeds in {f.adaptive[-1].text()}." for f in results.fusions]


def verdicts(results: Results) -> list[Verdict]:
    return [verdict(f"{f.attack} {f.norm} {f.goal} on fusion {'+'.join(f.models)}",
                    f.epsilon_labels[-1], f.adaptive[-1], "white-box on the fusion")
            for f in results.fusions]


FUSION = UnitKind("fusion", "fusion-", "fusions", plan, collect, sentences, verdicts)
