"""Typed results of the study commands, each a kind of the one versioned wrapper
(:mod:`facerobust.eval.results_file`, ``schema_version`` + ``kind``):

* :class:`StudentCard` (``student-card``) -- ``facerobust distill``; :func:`load_card`.
* :class:`DefensiveResult` (``defensive-distill``) -- ``facerobust defensive-distill``;
  :func:`load_defensive`.
* :class:`AdvTrainResult` (``adv-train``) with its :class:`JudgedHardening` block --
  ``facerobust adv-train``; :func:`load_training`.
* :class:`CleanEvalResult` (``eval-clean``) and :class:`HeadTrainingResult` (``train-head``).

The comparison (:class:`facerobust.eval.compare.Comparison`, ``comparison``) is read by
:func:`load_comparison`. Files written before the wrapper (each study's own schema 1) are
still read (:func:`from_study_document`). Every rate is a
:class:`~facerobust.eval.stats.Rate` (``{"k", "n", "rate", "ci95"}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from facerobust.eval.clean import CleanEvaluation
from facerobust.eval.compare import Comparison
from facerobust.eval.results import Unit
from facerobust.eval.results_file import (
    SCHEMA_VERSION,
    KindUnit,
    read_document,
    version_error,
)
from facerobust.eval.stats import Rate

K = TypeVar("K", bound=KindUnit)


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
class StudentCard(KindUnit):
    """A distilled student: what it is, what it was trained on, how well and how fast it
    does, and the SHA-256 of its weights (checked on load)."""

    KIND: ClassVar[str] = "student-card"

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
class DefensiveResult(KindUnit):
    KIND: ClassVar[str] = "defensive-distill"

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

    eps: float
    steps: int
    settings: dict[str, float]
    conditions: dict[str, JudgedCondition]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AdvTrainResult(KindUnit):
    """adv-train's result: the identity groups, the training report's figures (flat in the
    file, as ``training.json`` had them) and the judged block."""

    KIND: ClassVar[str] = "adv-train"

    model: str
    train_identities: list[str]
    holdout_identities: list[str]
    validation_identities: list[str]
    training: dict[str, Any]  # TrainingReport.to_dict()
    judged: JudgedHardening | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "train_identities": self.train_identities,
                "holdout_identities": self.holdout_identities,
                "validation_identities": self.validation_identities, **self.training,
                "judged": None if self.judged is None else self.judged.to_dict()}

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "") -> AdvTrainResult:
        """The inverse of :meth:`to_dict`: the flat training figures go back under
        ``training`` (the wrapper's keys dropped)."""
        name = where or cls.__name__
        if not isinstance(data, dict):
            raise ValueError(f"{name}: expected an object, got {type(data).__name__}")
        own = ("model", "train_identities", "holdout_identities", "validation_identities")
        missing = [k for k in own if k not in data]
        if missing:
            raise ValueError(f"{name}: missing key {missing[0]!r}")
        judged = data.get("judged")
        training = {k: v for k, v in data.items()
                    if k not in (*own, "judged", "schema_version", "kind")}
        return cls(model=str(data["model"]), train_identities=list(data["train_identities"]),
                   holdout_identities=list(data["holdout_identities"]),
                   validation_identities=list(data["validation_identities"]),
                   training=training,
                   judged=None if judged is None
                   else JudgedHardening.from_dict(judged, where=f"{name}.judged"))


@dataclass(frozen=True)
class HeadTrainingResult(KindUnit):
    """train-head's result: the split, the head's training and its held-out top-1."""

    KIND: ClassVar[str] = "train-head"

    model: str
    dataset: str
    head: str  # head kind: cosine | linear
    head_file: str  # the saved head, relative to the run folder
    epochs: int
    seed: int
    identities: int
    images_per_identity: int
    gallery_per_identity: int
    min_images: int
    n_train: int
    n_probe: int
    train_accuracy: Rate
    probe_top1: Rate
    skipped: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class CleanEvalResult(KindUnit):
    """eval-clean's result: the flat figures scripts read (``accuracy``, ``n_pairs``, ...),
    the skipped files and the whole typed evaluation under ``result``."""

    KIND: ClassVar[str] = "eval-clean"

    result: CleanEvaluation

    def to_dict(self) -> dict[str, Any]:
        return {**self.result.summary(), "skipped_files": self.result.skipped,
                "result": self.result.to_dict()}


LEGACY_KEYS = {"comparison": "schema"}  # where a pre-wrapper file kept its version


def from_study_document(cls: type[K], doc: Any, source: str, *, what: str) -> K:
    """``doc`` as a ``cls``: a wrapper file of ``cls.KIND``, or a file written before the
    wrapper (the studies' own version 1, under ``schema`` for a comparison, else
    ``schema_version``); any other version is refused naming both."""
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: not a {what} (top level is not an object)")
    if "kind" in doc or doc.get("schema_version") == SCHEMA_VERSION:
        if doc.get("schema_version") != SCHEMA_VERSION:
            raise version_error(source, doc.get("schema_version"))
        if doc.get("kind") != cls.KIND:
            raise ValueError(f"{source}: a {doc.get('kind')!r} result, not a {what} "
                             f"({cls.KIND!r})")
        return cls.from_dict(doc, where=source)
    key = LEGACY_KEYS.get(cls.KIND, "schema_version")
    if doc.get(key) != 1:
        raise version_error(source, doc.get(key), legacy=f"{what} schema 1 ({key!r})")
    return cls.from_dict(doc, where=source)


def load_comparison(path: str | Path) -> Comparison:
    return from_study_document(Comparison, read_document(path, "comparison"), str(path),
                               what="comparison")


def load_card(path: str | Path) -> StudentCard:
    return from_study_document(StudentCard, read_document(path, "student card"), str(path),
                               what="student card")


def load_defensive(path: str | Path) -> DefensiveResult:
    return from_study_document(DefensiveResult,
                               read_document(path, "defensive-distillation result"),
                               str(path), what="defensive-distillation result")


def judged_from_training(doc: Any, source: str) -> JudgedHardening | None:
    """The typed ``judged`` block of an adv-train result (None when not judged); in a file
    written before the wrapper the block carried its own version 1."""
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: not an adv-train result (top level is not an object)")
    block = doc.get("judged")
    if block is None:
        return None
    if "kind" not in doc and isinstance(block, dict) and block.get("schema_version") != 1:
        raise version_error(f"{source}: judged", block.get("schema_version"),
                            legacy="judged hardening schema 1")
    return JudgedHardening.from_dict(block, where=f"{source}: judged")


TRAINING_KEYS = ("model", "epochs", "eps", "before", "after")


def training_document(doc: Any, source: str) -> dict[str, Any]:
    """An adv-train result (``results.json``, or ``training.json`` before the wrapper) as its
    flat document, its judged block and required keys checked."""
    judged_from_training(doc, source)
    if "kind" in doc and (doc.get("kind") != AdvTrainResult.KIND
                          or doc.get("schema_version") != SCHEMA_VERSION):
        raise ValueError(f"{source}: not an adv-train result of schema {SCHEMA_VERSION}")
    for key in TRAINING_KEYS:
        if key not in doc:
            raise ValueError(f"{source}: missing key {key!r} (not an adv-train result)")
    return dict(doc)


def load_training(path: str | Path) -> tuple[dict[str, Any], JudgedHardening | None]:
    """adv-train's result: the document and its typed ``judged`` block."""
    doc = training_document(read_document(path, "adv-train result"), str(path))
    return doc, judged_from_training(doc, str(path))
