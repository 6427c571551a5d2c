"""Defense units: one defense judged under naive, direct, adaptive (BPDA + EOT) and optional
black-box attacks."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from facerobust.eval.config import AuditConfig
from facerobust.eval.experiment import Experiment
from facerobust.eval.results import DefenseUnit
from facerobust.eval.results_audit import Results
from facerobust.eval.results_file import Verdict, verdict
from facerobust.eval.shards import sharding
from facerobust.eval.unit_kind import PlannedUnit, Stored, UnitKind, unit_seed
from facerobust.eval.units import DefenseShards, sharded


def plan(cfg: AuditConfig, exp: Experiment, _out: Path) -> list[PlannedUnit]:
    units: list[PlannedUnit] = []
    for i, dcfg in enumerate(cfg.defenses):
        key = f"defense-{i}-{cfg.models.victim}"
        units.append((key, exp.fingerprint("defense", asdict(dcfg),
                                         *sharding(dcfg.samples, cfg.run.shard_size)),
                      sharded(DefenseShards(exp, dcfg, unit_seed(cfg.run.seed, key)))))
    return units


def collect(_cfg: AuditConfig, units: Stored) -> list[DefenseUnit]:
    return [DefenseUnit.from_dict(v, where=k) for k, v in units.items()]


def sentences(results: Results) -> list[str]:
    return [f"Defense {d.name}: the worst attack at {d.epsilon_labels[-1]} succeeds in "
            f"{d.worst_case[-1].text()} (undefended {100 * d.undefended[-1].rate:.0f}%)."
            for d in results.defenses]


def verdicts(results: Results) -> list[Verdict]:
    return [verdict(f"{d.attack} {d.norm} {d.goal} through defense {d.name}",
                    d.epsilon_labels[-1], d.worst_case[-1], "worst of all attacks")
            for d in results.defenses]


DEFENSE = UnitKind("defense", "defense-", "defenses", plan, collect, sentences, verdicts)
