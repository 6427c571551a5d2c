"""Typed results of the face-similarity study (issue 15), each under its own schema version.

* :class:`StudentCard` -- ``<student>.card.json`` written by ``facerobust distill``
  (:data:`CARD_SCHEMA`); :func:`load_card`.
* :class:`DefensiveResult` -- the JSON of ``facerobust defensive-distill``
  (:data:`DEFENSIVE_SCHEMA`); :func:`load_defensive`.
* :class:`JudgedHardening` -- the ``judged`` block of adv-train's ``training.json``
  (:data:`JUDGED_SCHEMA`); :func:`load_judged`.

Every rate is a :class:`~facerobust.eval.stats.Rate` (``{"k", "n", "rate", "ci95"}``).
The comparison (:class:`facerobust.eval.compare.Comparison`) is read by :func:`load_comparison`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facerobust.eval.compare import COMPARE_SCHEMA, Comparison
from facerobust.eval.results import Unit
from facerobust.eval.stats import Rate
from facerobust.eval.versioned import from_versioned, load_versioned, read_json
from facerobust.models.student import CARD_SCHEMA

DEFENSIVE_SCHEMA = 1
JUDGED_SCHEMA = 1


@dataclass(frozen=True)
class StudentData(Unit):
    dataset: str
    images: int
    identities: int
    skipped: int
    excluded_identities: int
    note: str = ""


@dataclass(frozen=True)
class StudentTraining(Unit):
    epochs: int
    seed: int
    train_loss: list[float]
    val_loss: list[float]
    best_epoch: int
    n_train: int
    n_val: int
    calibration_accuracy: float


@dataclass(frozen=True)
class StudentLfw(Unit):
    pairs_file: str
    n_pairs: int
    student_accuracy: float  # k-fold mean; pooled decisions with CI: comparison.models[i]
    teacher_accuracy: float
    pairs_requested: int | None = None


@dataclass(frozen=True)
class Speed(Unit):
    student: float  # ms/image at batch 32
    teacher: float
    speedup: float
    torch_threads: int


@dataclass(frozen=True)
class TransferPoint(Unit):
    eps: float
    teacher: Rate  # PGD dodging crafted on the teacher: white-box success
    student: Rate  # the same chips judged by the student


@dataclass(frozen=True)
class StudentCard(Unit):
    """A distilled student: what it is, what it was trained on, how well and how fast it
    does, and the SHA-256 of its weights (checked on load)."""

    schema_version: int
    name: str
    architecture: str
    parameters: int
    teacher: str
    threshold_source: str
    data: StudentData
    training: StudentTraining
    lfw: StudentLfw
    comparison: Comparison
    ms_per_image_batch32: Speed
    transfer_teacher_to_student: list[TransferPoint]
    measured_at: str
    seconds: float
    weights_file: str  # filled in by save_student
    weights_sha256: str
    embedding_dim: int
    widths: list[int]
    input_px: int
    metric: str
    threshold: float
    note: str = ""


@dataclass(frozen=True)
class DefensiveHead(Unit):
    """One identification head under attack; attack rates count probes it classified
    correctly (``n_correct`` of ``n_probes``); absent when none was."""

    probe_top1: Rate
    n_correct: int
    n_probes: int
    mean_top_logit_gap: float
    zero_gradient: Rate
    naive_pgd: Rate | None = None
    logit_pgd: Rate | None = None
    cw_l2_logits: Rate | None = None
    cw_l2_unbounded: Rate | None = None


@dataclass(frozen=True)
class DefensiveResult(Unit):
    schema_version: int
    model: str
    dataset: str
    identities: int
    n_train: int
    n_probe: int
    temperature: float
    eps: float
    pgd_steps: int
    cw_l2_budget: float
    cw_steps: int
    seed: int
    heads: dict[str, DefensiveHead]  # "plain" and "distilled"
    head_epochs: int | None = None


@dataclass(frozen=True)
class JudgedCondition(Unit):
    condition: str  # what was measured, in words
    before: Rate  # the original model
    after: Rate  # the retrained model


@dataclass(frozen=True)
class JudgedHardening(Unit):
    """Conditions (a)-(d) before and after retraining, on held-out identities."""

    schema_version: int
    eps: float
    steps: int
    settings: dict[str, float]
    conditions: dict[str, JudgedCondition]
    notes: list[str] = field(default_factory=list)


def load_comparison(path: str | Path) -> Comparison:
    return load_versioned(Comparison, path, what="comparison", expected=COMPARE_SCHEMA,
                          key="schema")


def load_card(path: str | Path) -> StudentCard:
    return load_versioned(StudentCard, path, what="student card", expected=CARD_SCHEMA)


def load_defensive(path: str | Path) -> DefensiveResult:
    return load_versioned(DefensiveResult, path, what="defensive-distillation result",
                          expected=DEFENSIVE_SCHEMA)


def judged_from_training(doc: Any, source: str) -> JudgedHardening | None:
    """The typed ``judged`` block of a ``training.json`` document (None when not judged)."""
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: not an adv-train training.json (top level is not an "
                         "object)")
    if doc.get("judged") is None:
        return None
    return from_versioned(JudgedHardening, doc["judged"], f"{source}: judged",
                          what="judged hardening", expected=JUDGED_SCHEMA)


def load_training(path: str | Path) -> tuple[dict[str, Any], JudgedHardening | None]:
    """adv-train's ``training.json``: the document and its typed ``judged`` block."""
    doc = read_json(path, "adv-train training.json")
    judged = judged_from_training(doc, str(path))
    for key in ("model", "epochs", "eps", "before", "after"):
        if key not in doc:
            raise ValueError(f"{path}: missing key {key!r} (not an adv-train training.json)")
    return doc, judged
