"""Physical units: a printable accessory against the victim's face system, judged on
held-out simulated captures by its exact pipeline, one unit per ``[[physical]]`` table."""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from pathlib import Path

from facerobust.eval.config import AuditConfig
from facerobust.eval.experiment import Experiment
from facerobust.eval.physical_config import PhysicalConfig
from facerobust.eval.physical_study import SIMULATED, Judges, StudyOptions, run_physical
from facerobust.eval.results_audit import Results
from facerobust.eval.results_file import Verdict, verdict
from facerobust.eval.results_physical import PhysicalUnit
from facerobust.eval.unit_kind import PlannedUnit, Stored, UnitKind, unit_seed
from facerobust.system.face_system import FaceSystem
from facerobust.system.physical import PhysicalOptions
from facerobust.system.spec import load_detectors


def physical_key(index: int, pcfg: PhysicalConfig, victim: str) -> str:
    mode = "universal" if pcfg.universal else "per-photo"
    return f"physical-{index}-{pcfg.accessory}-{pcfg.goal}-{mode}-{victim}"


def guarded(exp: Experiment, pcfg: PhysicalConfig, index: int) -> FaceSystem:
    """The victim's face system, with the table's detectors when it names some."""
    system = exp.system()
    if not pcfg.detectors:
        return system
    scorers = load_detectors(pcfg.detectors, system.base, exp.victim,
                             f"physical[{index}].detectors")
    return FaceSystem(system.base, threshold=system.threshold, capture=system.capture,
                      scorers=scorers, name=system.name)


def physical_unit(exp: Experiment, pcfg: PhysicalConfig, index: int, seed: int,
                  out: Path) -> PhysicalUnit:
    """Run one ``[[physical]]`` table; its printable files go to the run folder."""
    attack = PhysicalOptions(accessory=pcfg.accessory, goal=pcfg.goal, steps=pcfg.steps,
                             eot_samples=pcfg.eot_samples, heldout_captures=pcfg.heldout,
                             min_feature_mm=pcfg.min_feature_mm, seed=seed,
                             adaptive=pcfg.adaptive)
    options = StudyOptions(accessories=(pcfg.accessory,), goals=(pcfg.goal,),
                           universal=pcfg.universal, attackers=pcfg.attackers,
                           photos=pcfg.photos, attack=attack, seed=seed, progress=False)
    if exp.dataset is None:
        raise ValueError("[[physical]] needs the audit's dataset (photos of the attackers)")
    res = run_physical(guarded(exp, pcfg, index), exp.dataset, options, out, Judges())
    return PhysicalUnit(physical_key(index, pcfg, exp.victim), exp.victim, res.summaries[0],
                        res.rows, SIMULATED)


def plan(cfg: AuditConfig, exp: Experiment, out: Path) -> list[PlannedUnit]:
    units: list[PlannedUnit] = []
    for i, pcfg in enumerate(cfg.physical):
        key = physical_key(i, pcfg, cfg.models.victim)
        units.append((key, exp.fingerprint("physical", asdict(pcfg)),
                      partial(physical_unit, exp, pcfg, i, unit_seed(cfg.run.seed, key), out)))
    return units


def collect(_cfg: AuditConfig, units: Stored) -> list[PhysicalUnit]:
    return [PhysicalUnit.from_dict(v, where=k) for k, v in units.items()]


def _label(unit: PhysicalUnit) -> str:
    s = unit.summary
    return f"printed {s.accessory} ({s.goal}, {'universal' if s.universal else 'per photo'})"


def sentences(results: Results) -> list[str]:
    return [f"{_label(u)} against {u.model}: {u.summary.success.text()} of held-out "
            f"captures, against {u.summary.control.text()} for a random texture."
            for u in results.physical]


def verdicts(results: Results) -> list[Verdict]:
    return [verdict(_label(u), "physical", u.summary.success,
                    f"random texture: {u.summary.control.text()}") for u in results.physical]


PHYSICAL = UnitKind("physical", "physical-", "physical", plan, collect, sentences, verdicts)
