"""The typed ``results.json`` of an audit (``audit``, ``attack``, ``defend``, ``detect``,
``demo``): the run's facts, every unit (:mod:`.results`, :mod:`.results_detection`) and the
figures derived from them (:mod:`.audit_summary`), so the report only renders attributes.
Written in the wrapper of :mod:`.results_file` with ``kind = "audit"``."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from facerobust.eval.results import (
    AttackUnit,
    CleanUnit,
    DefenseUnit,
    FusionUnit,
    MinimalUnit,
    Unit,
)
from facerobust.eval.results_certify import CertifyUnit
from facerobust.eval.results_detection import DetectorUnit
from facerobust.eval.results_file import KindUnit, Verdict
from facerobust.eval.results_physical import PhysicalUnit
from facerobust.eval.stats import Rate


@dataclasses.dataclass(frozen=True)
class Skipped(Unit):
    path: str
    reason: str


@dataclasses.dataclass(frozen=True)
class IdentificationFacts(Unit):
    source: str
    identities: int
    enrolment_images: int
    probe_images: int
    head: str
    split: dict[str, Any] = dataclasses.field(default_factory=dict)
    identities_requested: int | None = None


@dataclasses.dataclass(frozen=True)
class DatasetFacts(Unit):
    """What the experiment did with its dataset (:func:`.dataset_info.describe_dataset`)."""

    name: str
    root: str
    pairs_source: str
    protocol: str
    n_images: int
    pairs_dropped: int
    layout: str = "lfw"
    identities_total: int | None = None
    images_total: int | None = None
    pairs_generated: bool = False
    detector: str = "hog"
    detectors: dict[str, int] = dataclasses.field(default_factory=dict)
    multiple_faces: int = 0
    identification: IdentificationFacts | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)
    skipped: list[Skipped] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Models(Unit):
    victim: str
    others: list[str]
    missing: dict[str, str] = dataclasses.field(default_factory=dict)
    details: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class AccuracyCurve(Unit):
    """Decisions still right under attack vs epsilon (eps 0 = clean), with a 95% band."""

    task: str
    label: str
    norm: str
    epsilons: list[float]
    accuracy: list[float]
    low: list[float]
    high: list[float]


@dataclasses.dataclass(frozen=True)
class AttackedRoc(Unit):
    label: str
    fpr: list[float]
    tpr: list[float]
    auc: float


@dataclasses.dataclass(frozen=True)
class RateMatrix(Unit):
    """Rows (sources or attacks) x targets (models) of rates; ``None``: no such cell."""

    source: str
    targets: list[str]
    rows: list[str]
    values: list[list[Rate | None]]
    epsilon_label: str = ""
    slug: str = ""
    title: str = ""


@dataclasses.dataclass(frozen=True)
class HeadlinePick(Unit):
    """The most successful attack for one goal at the reference budget."""

    attack: str
    epsilon: float
    success: Rate
    transfer: dict[str, Rate]


@dataclasses.dataclass(frozen=True)
class Summary(Unit):
    """The report's opening: verdict rows, short sentences and the headline per goal."""

    verdicts: list[Verdict]
    sentences: list[str]
    headline: dict[str, HeadlinePick]


@dataclasses.dataclass(frozen=True)
class Results(KindUnit):
    """One audit run, typed: what ``load_results`` returns and the report reads."""

    KIND: ClassVar[str] = "audit"

    command: str
    config: dict[str, Any]
    seed: int
    started: str
    finished: str
    dataset: DatasetFacts
    models: Models
    clean: dict[str, CleanUnit]
    attacks: list[AttackUnit]
    minimal: MinimalUnit | None
    defenses: list[DefenseUnit]
    config_text: str = ""
    config_fingerprint: str = ""
    environment: dict[str, Any] = dataclasses.field(default_factory=dict)
    fusions: list[FusionUnit] = dataclasses.field(default_factory=list)
    detectors: list[DetectorUnit] = dataclasses.field(default_factory=list)
    certify: list[CertifyUnit] = dataclasses.field(default_factory=list)
    physical: list[PhysicalUnit] = dataclasses.field(default_factory=list)
    # derived (audit_summary.add_derived): the report computes nothing
    accuracy_curves: list[AccuracyCurve] = dataclasses.field(default_factory=list)
    roc_attacked: list[AttackedRoc] = dataclasses.field(default_factory=list)
    transfer_matrix: RateMatrix | None = None
    source_target: list[RateMatrix] = dataclasses.field(default_factory=list)
    methodology: list[str] = dataclasses.field(default_factory=list)
    summary: Summary | None = None

    @property
    def run_name(self) -> str:
        return str(self.config.get("run", {}).get("name", ""))

    @property
    def victim_clean(self) -> CleanUnit | None:
        return self.clean.get(self.models.victim)


DERIVED_KEYS = ("accuracy_curves", "roc_attacked", "transfer_matrix", "source_target",
                "methodology", "summary")
