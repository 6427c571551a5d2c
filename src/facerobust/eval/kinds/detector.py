"""Detector units: an adversarial-input detector fitted, calibrated, judged and adaptively
attacked, on the adversarial data set every detector with the same data settings shares
(computed once, as shards of the probes: :mod:`facerobust.eval.detection_data`). Each variant
(trajectory's) is a shard of the unit; the fingerprint is unchanged (every variant keeps the
unit's seed, so the results are those of the variants computed one after another)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from facerobust.eval.config import AuditConfig
from facerobust.eval.detection_data import detection_data
from facerobust.eval.experiment import Experiment
from facerobust.eval.results_audit import Results
from facerobust.eval.results_detection import DetectorUnit
from facerobust.eval.results_file import Verdict, verdict
from facerobust.eval.shards import Dependent, sharding
from facerobust.eval.unit_kind import PlannedUnit, Stored, UnitKind, unit_seed
from facerobust.eval.units import detector_unit


def plan(cfg: AuditConfig, exp: Experiment, out: Path) -> list[PlannedUnit]:
    units: list[PlannedUnit] = []
    for i, det in enumerate(cfg.detectors):
        key = f"detector-{i}-{det.name}"
        fn = detector_unit(exp, det, key, unit_seed(cfg.run.seed, key), out)
        units.append((key, exp.fingerprint("detector", asdict(det),
                                           *sharding(det.samples, cfg.run.shard_size)),
                      Dependent([detection_data(exp, det)], fn)))
    return units


def collect(_cfg: AuditConfig, units: Stored) -> list[DetectorUnit]:
    return [DetectorUnit.from_dict(v, where=k) for k, v in units.items()]


def sentences(results: Results) -> list[str]:
    out = []
    for unit in results.detectors:
        for d in unit.results:
            if d.macro_auc is None:
                continue
            out.append(f"Detector {d.label}: Macro-AUC {d.macro_auc:.3f}, clean false alarms "
                       f"{d.clean_fpr.text()}.")
            worst = max(d.adaptive, key=lambda a: (a.epsilon, a.adaptive_evades.rate),
                        default=None)
            if worst is not None:
                out.append(f"An adaptive attack at {worst.epsilon_label} slips past it in "
                           f"{worst.adaptive_evades.text()}.")
    return out


def verdicts(results: Results) -> list[Verdict]:
    rows = []
    for unit in results.detectors:
        for det in unit.results:
            if det.adaptive:
                row = max(det.adaptive, key=lambda r: (r.epsilon, r.adaptive_evades.rate))
                rows.append(verdict(f"{det.adaptive_attack} {row.goal} past detector "
                                    f"{det.label}", row.epsilon_label, row.adaptive_evades,
                                    "fools the model and is not flagged"))
    return rows


DETECTOR = UnitKind("detector", "detector-", "detectors", plan, collect, sentences, verdicts)
