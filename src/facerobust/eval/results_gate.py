"""Typed results of the gate studies, each a whole ``results.json`` told apart by ``kind``:
``attack-gate`` (black-box attack over HTTP, :class:`GateAttackResults`) and
``gate-photo-attack`` (chip- vs photo-space adversarial photos, :class:`PhotoStudyResults`)
and the look-alike search through ``/identify`` (:class:`LookalikeResults`).
The studies compute them (:mod:`facerobust.service.blackbox`,
:mod:`facerobust.service.photo_study`); their verdict rows and sentences are derived here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from facerobust.attacks.threat import format_epsilon
from facerobust.eval.results import Unit
from facerobust.eval.results_file import KindUnit, Overview, verdict
from facerobust.eval.stats import Rate

PHOTO_NORM = "linf"  # the photo study's PGD budget is always an Linf ball


@dataclass(frozen=True)
class Sample(Unit):
    attacker_photo: str
    victim: str
    queries: int  # HTTP queries made (each a /verify)
    queries_to_success: dict[str, int | None]  # eps label -> first accepted query within eps
    rate_limited: int = 0
    waited_s: float = 0.0
    locked_out: bool = False
    wall_s: float = 0.0
    clean_score: float | None = None  # the gate's score of the clean photo (when exposed)
    best_score: float | None = None  # lowest score seen within the largest budget
    best_accepted_linf: float | None = None  # smallest Linf of an accepted query (any budget)
    no_face: int = 0  # queries the gate refused (no face found in the perturbed photo, ...)


@dataclass(frozen=True)
class BudgetSummary(Unit):
    eps: float
    success: Rate
    median_queries: float | None  # among successes
    median_ci95: list[float] | None
    success_within_lockout: Rate | None  # successes needing < max_rejections rejections
    median_time_at_rate_s: float | None  # median queries-to-success at the allowed rate


@dataclass(frozen=True)
class GateAttackResults(KindUnit):
    KIND: ClassVar[str] = "gate-attack"

    gate: dict[str, Any]
    attack: str
    norm: str
    max_queries: int
    scores_used: bool
    limits: dict[str, Any]
    budgets: list[BudgetSummary]
    samples: list[Sample] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    clean_check_queries: int = 1  # per pair, before the attack (not in the figures)
    budget_time_at_rate_s: float | None = None  # the whole query budget at the allowed rate


@dataclass(frozen=True)
class Cell(Unit):
    method: str
    eps: float
    fmt: str  # how the photo was submitted: "png" or "jpeg:Q"
    gate_success: Rate
    in_memory_success: Rate  # the attacker's own chip, before the gate (same for each fmt)
    crafted_success: Rate | None = None  # PGD's own success on what it attacked (chip/photo)


@dataclass(frozen=True)
class PhotoStudyResults(KindUnit):
    KIND: ClassVar[str] = "gate-photo"

    gate: dict[str, Any]
    model: str
    steps: int
    eot_samples: int
    jpeg_eot: int
    cells: list[Cell]
    samples: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class LookalikeHit(Unit):
    query: int  # 1-based /identify query that named someone
    photo: str
    person: str  # who the attacker photo really shows (never enrolled)
    named: str  # the enrolled identity /identify answered
    score: float | None
    verified: bool  # did /verify then accept the same photo as ``named``?


@dataclass(frozen=True)
class LookalikeResults(KindUnit):
    """``/identify`` combed with a photo collection for natural look-alikes of enrolled
    people (issue 26's oracle), then each found one tried at ``/verify``."""

    KIND: ClassVar[str] = "gate-lookalike"

    gate: dict[str, Any]
    gallery: int  # identities enrolled for the study (one photo each)
    queries: int  # /identify queries answered
    found: Rate  # look-alikes among the answered queries
    verified: Rate  # of those, accepted by /verify as the named identity
    first_found_at: int | None  # queries needed for the first look-alike
    stopped_at: int | None = None  # the query the gate refused (lock-out, rate limit)
    stopped_by: str = ""
    limits: dict[str, Any] = field(default_factory=dict)
    first_found_at_limits_s: float | None = None  # time to the first look-alike at the limits
    hits: list[LookalikeHit] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def lookalike_overview(res: LookalikeResults) -> Overview:
    threat = f"natural look-alike search through /identify ({res.gallery} enrolled)"
    rows = [verdict(threat, "per query", res.found, f"{res.queries} queries"),
            verdict("a found look-alike accepted by /verify", "-", res.verified)]
    first = ("no look-alike found" if res.first_found_at is None else
             f"the first look-alike came after {res.first_found_at} queries")
    stop = "" if res.stopped_at is None else \
        f" The gate stopped the search at query {res.stopped_at} ({res.stopped_by})."
    return Overview(rows, [f"In {res.queries} /identify queries {first}; "
                           f"{res.found.text()} of the queries named someone.{stop}"])


def gate_attack_overview(res: GateAttackResults) -> Overview:
    """A verdict row per budget (and before the lock-out); one sentence per budget."""
    mode = "scores" if res.scores_used else "decisions only"
    threat = f"{res.attack.upper()} {res.norm} impersonation over HTTP ({mode})"
    rows, sentences = [], []
    for b in res.budgets:
        label = format_epsilon(b.eps, res.norm)
        rows.append(verdict(threat, label, b.success, f"{res.max_queries} queries per pair"))
        if b.success_within_lockout is not None:
            rows.append(verdict(f"{threat}, before the lock-out", label,
                                b.success_within_lockout))
        median = "" if b.median_queries is None else \
            f", median {b.median_queries:g} queries"
        sentences.append(f"At {label}, {res.attack.upper()} gets an impostor accepted in "
                         f"{b.success.text()}{median}.")
    return Overview(rows, sentences)


def photo_overview(res: PhotoStudyResults) -> Overview:
    """A verdict row per method and upload format at the largest budget."""
    if not res.cells:
        return Overview([], [])
    top = max(c.eps for c in res.cells)
    label = format_epsilon(top, PHOTO_NORM)
    rows, sentences = [], []
    for c in (c for c in res.cells if c.eps == top):
        rows.append(verdict(f"PGD-{res.steps} {c.method} impersonation through the gate",
                            label, c.gate_success, f"uploaded as {c.fmt}"))
        sentences.append(f"{c.method} as {c.fmt} at {label}: the gate accepts "
                         f"{c.gate_success.text()}.")
    return Overview(rows, sentences)
