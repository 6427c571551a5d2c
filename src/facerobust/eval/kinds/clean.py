"""Clean units: every model's clean figures (10-fold accuracy, ROC, TAR@FAR, identification)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from facerobust.eval.config import AuditConfig
from facerobust.eval.experiment import Experiment
from facerobust.eval.results import CleanUnit
from facerobust.eval.results_audit import Results
from facerobust.eval.unit_kind import PlannedUnit, Stored, UnitKind


def plan(_cfg: AuditConfig, exp: Experiment, _out: Path) -> list[PlannedUnit]:
    return [(f"clean-{name}", exp.fingerprint("clean", name), partial(exp.clean_unit, name))
            for name in exp.models]


def collect(_cfg: AuditConfig, units: Stored) -> dict[str, CleanUnit]:
    return {k.removeprefix("clean-"): CleanUnit.from_dict(v, where=k) for k, v in units.items()}


def sentences(results: Results) -> list[str]:
    clean = results.victim_clean
    if clean is None:
        return []
    return [f"{results.models.victim} verifies {clean.n_pairs} pairs of {results.dataset.name} "
            f"with {100 * clean.accuracy:.1f}% accuracy.",
            f"At {100 * clean.far:g}% false accepts it accepts {clean.tar_at_far.text()} of "
            "genuine users."]


CLEAN = UnitKind("clean", "clean-", "clean", plan, collect, sentences)
