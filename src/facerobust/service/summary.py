"""Figures of a black-box gate attack: success per budget (Wilson CI), median queries to
success with a distribution-free CI, success before the lock-out, time at the allowed rate."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from facerobust.attacks.threat import Threat, threat_for
from facerobust.eval.results_gate import BudgetSummary, GateAttackResults, Sample
from facerobust.eval.stats import Rate
from facerobust.service.config import LimitsSection
from facerobust.service.limits import time_at_rate

if TYPE_CHECKING:
    from facerobust.eval.results_gate import GateAttackResults, Sample


def median_ci(values: list[int], z: float = 1.96) -> tuple[float | None, list[float] | None]:
    """Median and its distribution-free 95% interval from order statistics."""
    if not values:
        return None, None
    v = sorted(values)
    n = len(v)
    lo = max(0, int(np.floor(n / 2 - z * np.sqrt(n) / 2)) - 1)
    hi = min(n - 1, int(np.ceil(n / 2 + z * np.sqrt(n) / 2)))
    return float(np.median(v)), [float(v[lo]), float(v[hi])]


def summarise(samples: list[Sample], epsilons: list[float],
              limits: LimitsSection | None, threat: Threat) -> list[BudgetSummary]:
    out: list[BudgetSummary] = []
    for e in epsilons:
        q = [s.queries_to_success[threat.format_epsilon(e)] for s in samples]
        wins = [v for v in q if v is not None]
        med, ci = median_ci(wins)
        within, at_rate = None, None
        if limits is not None:
            n_rej = limits.max_rejections
            ok = [v is not None and (n_rej <= 0 or v - 1 < n_rej) for v in q]
            within = Rate(sum(ok), len(q))
            rates = [(r, b) for r, b in ((limits.key_rate, limits.key_burst),
                                         (limits.identity_rate, limits.identity_burst)) if r > 0]
            if med is not None and rates:
                at_rate = max(time_at_rate(int(med), r, b) for r, b in rates)
        out.append(BudgetSummary(e, Rate(len(wins), len(q)), med, ci, within, at_rate))
    return out


def budget_time(queries: int, limits: LimitsSection | None) -> float | None:
    if limits is None:
        return None
    rates = [(r, b) for r, b in ((limits.key_rate, limits.key_burst),
                                 (limits.identity_rate, limits.identity_burst)) if r > 0]
    return max((time_at_rate(queries, r, b) for r, b in rates), default=0.0)


def describe(results: GateAttackResults) -> list[str]:
    """Human-readable lines: success and queries-to-success per budget."""
    lines = [f"{results.attack} ({results.norm}, {results.max_queries} queries, "
             f"{'scores' if results.scores_used else 'decisions only'}) through "
             f"{results.gate.get('model')}:"]
    threat = threat_for(results.norm)
    for b in results.budgets:
        med = "-" if b.median_queries is None else (
            f"median {b.median_queries:g} queries (95% CI {b.median_ci95[0]:g}-"
            f"{b.median_ci95[1]:g})" if b.median_ci95 else f"median {b.median_queries:g}")
        extra = ""
        if b.success_within_lockout is not None:
            extra = f"; before lock-out {b.success_within_lockout.text()}"
        if b.median_time_at_rate_s is not None:
            extra += f"; {b.median_time_at_rate_s:.0f} s at the allowed rate"
        label = threat.format_epsilon(b.eps)
        lines.append(f"  eps {label}: success {b.success.text()}, {med}{extra}")
    if results.budget_time_at_rate_s is not None:
        lines.append(f"  the whole budget per pair takes {results.budget_time_at_rate_s:.0f} s at "
                     "the gate's allowed rate")
    return lines
