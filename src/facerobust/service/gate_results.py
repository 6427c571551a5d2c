"""Typed results of a black-box gate attack (:mod:`facerobust.service.blackbox`): one
:class:`Sample` per attacked pair, one :class:`BudgetSummary` per budget, and the file's
:class:`GateAttackResults` (schema :data:`GATE_SCHEMA`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from facerobust.core.stats import Rate
from facerobust.eval.results import Unit

GATE_SCHEMA = 1


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
class GateAttackResults(Unit):
    schema: int
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
