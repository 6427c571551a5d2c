"""Typed results of a detector study (``results.json`` key ``detectors``, one
:class:`DetectorUnit` per ``[[detector]]``), part of the schema of :mod:`.results`."""

from __future__ import annotations

import dataclasses
from typing import Any

from facerobust.eval.results import Unit
from facerobust.eval.stats import Rate


@dataclasses.dataclass(frozen=True)
class AttackDetection(Unit):
    """How well one detector separates clean test probes from one attack's adversarials."""

    group: str  # "<attack>/<goal>"
    attack: str
    goal: str
    n_clean: int
    n_adversarial: int
    auroc: float
    auroc_ci95: list[float]  # Hanley-McNeil
    tpr_at_1: Rate  # adversarials flagged at the threshold giving <= 1% FPR on these clean
    tpr_at_5: Rate  # ... <= 5% FPR
    detected: Rate  # flagged at the operating threshold (calibrated on validation clean)
    roc: list[list[float]]  # (fpr, tpr) points


@dataclasses.dataclass(frozen=True)
class AdaptiveRow(Unit):
    """Naive vs adaptive attack at one budget: success at fooling the model, and at fooling
    the model AND staying under the detector's threshold (judged by the real detector). The
    adaptive columns count a sample when any run evades: the hinge runs or the naive one."""

    goal: str
    epsilon: float
    epsilon_label: str
    naive_model: Rate
    naive_evades: Rate
    adaptive_model: Rate
    adaptive_evades: Rate


@dataclasses.dataclass(frozen=True)
class DetectorResult(Unit):
    """One detector (variant) fitted, calibrated and attacked."""

    detector: str
    label: str
    options: dict[str, Any]
    adaptive_kind: str  # exact | bpda | surrogate
    macro_auc: float | None  # mean AUROC over attack groups (test split); None: no group
    macro_auc_by_goal: dict[str, float]
    per_attack: list[AttackDetection]
    macro_auc_heldout_identities: float | None  # fitted on half the identities, tested on
    heldout_identities: list[AttackDetection]  # the other half's probes
    target_fpr: float
    threshold: float
    clean_fpr: Rate  # clean test probes flagged at the operating threshold
    ms_per_image: float
    adaptive_attack: str
    adaptive_steps: int
    adaptive: list[AdaptiveRow]
    validation_history: list[float]
    file: str  # the saved detector, relative to the run folder
    notes: list[str]


@dataclasses.dataclass(frozen=True)
class DetectionData(Unit):
    """The probes and adversarials a detector study used."""

    model: str
    n_identities: int
    n_gallery: int
    n_probes: dict[str, int]  # train / val / test (and id-train / id-val / id-test) probes
    epsilon: float
    attack_success: dict[str, Rate]  # per group: adversarials found among the probes attacked
    n_adversarial: dict[str, dict[str, int]]  # split -> group -> successful adversarials


@dataclasses.dataclass(frozen=True)
class DetectorUnit(Unit):
    key: str
    name: str
    model: str
    data: DetectionData
    results: list[DetectorResult]
    seconds: float = 0.0
