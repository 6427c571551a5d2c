"""Certify units: randomized-smoothing certificates of the victim's decisions, one unit per
``[[certify]]`` table and noise level."""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from pathlib import Path

from facerobust.eval.certify_unit import certify_key, certify_unit
from facerobust.eval.config import AuditConfig
from facerobust.eval.experiment import Experiment
from facerobust.eval.results_audit import Results
from facerobust.eval.results_certify import CertifyUnit
from facerobust.eval.unit_kind import PlannedUnit, Stored, UnitKind, unit_seed

HEADLINE_RADIUS = 0.5  # the radius the summary quotes (Cohen et al.'s headline), if listed


def plan(cfg: AuditConfig, exp: Experiment, _out: Path) -> list[PlannedUnit]:
    units: list[PlannedUnit] = []
    for i, ccfg in enumerate(cfg.certify):
        for sigma in ccfg.sigmas:
            key = certify_key(i, sigma, cfg.models.victim)
            units.append((key, exp.fingerprint("certify", asdict(ccfg), sigma),
                          partial(certify_unit, exp, ccfg, i, sigma, unit_seed(cfg.run.seed,
                                                                               key))))
    return units


def collect(_cfg: AuditConfig, units: Stored) -> list[CertifyUnit]:
    return [CertifyUnit.from_dict(v, where=k) for k, v in units.items()]


def sentences(results: Results) -> list[str]:
    out = []
    for unit in results.certify:
        i = unit.radii.index(HEADLINE_RADIUS) if HEADLINE_RADIUS in unit.radii else -1
        at = [f"{g.name} {g.certified[i].text()}" for g in unit.groups]
        out.append(f"Smoothed {unit.model} (sigma {unit.sigma:g}): certified at L2 radius "
                   f"{unit.radii[i]:g}: " + "; ".join(at)
                   + f". Adaptive-attack flips of certified decisions: {unit.attack_flips}.")
    return out


CERTIFY = UnitKind("certify", "certify-", "certify", plan, collect, sentences)
