"""Two runs side by side: every rate present in both, its difference and whether the
difference is significant at 5% (two-sided; Fisher's exact test when an expected count of
the 2x2 table is under 5, else the pooled two-proportion z-test). Rates in one run only are
listed as such."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from scipy.stats import fisher_exact

from facerobust.eval.results import Unit
from facerobust.eval.results_file import KindUnit
from facerobust.eval.stats import Rate

ALPHA = 0.05
MIN_EXPECTED = 5  # below this expected count in any cell, Fisher's exact test is used
TEST_RULE = ("Two-sided test at 5%: the pooled two-proportion z-test, or Fisher's exact test "
             f"when an expected count of the 2x2 table is under {MIN_EXPECTED}.")


@dataclass(frozen=True)
class RateDifference(Unit):
    label: str
    a: Rate
    b: Rate
    difference: float  # b.rate - a.rate
    p_value: float | None  # None: a rate without trials cannot be tested
    test: str  # "z-test", "fisher" or "none"
    significant: bool


@dataclass(frozen=True)
class RunComparison(KindUnit):
    """``facerobust report --compare``'s ``compare.json``."""

    KIND: ClassVar[str] = "run-comparison"

    run_a: str
    run_b: str
    kind_a: str
    kind_b: str
    rows: list[RateDifference]
    only_a: dict[str, Rate]
    only_b: dict[str, Rate]
    alpha: float = ALPHA
    test_rule: str = TEST_RULE


def two_proportion_test(a: Rate, b: Rate) -> tuple[float | None, str]:
    """p-value (two-sided) and the test used: Fisher's exact for small expected counts."""
    if a.n == 0 or b.n == 0:
        return None, "none"
    k, n = a.k + b.k, a.n + b.n
    expected = [a.n * k / n, a.n * (n - k) / n, b.n * k / n, b.n * (n - k) / n]
    if min(expected) < MIN_EXPECTED:
        _, p = fisher_exact([[a.k, a.n - a.k], [b.k, b.n - b.k]])
        return float(p), "fisher"
    pooled = k / n
    se = math.sqrt(pooled * (1 - pooled) * (1 / a.n + 1 / b.n))
    z = (b.rate - a.rate) / se
    return float(math.erfc(abs(z) / math.sqrt(2))), "z-test"


def compare_rates(a: dict[str, Rate], b: dict[str, Rate], *, run_a: str, run_b: str,
                  kind_a: str, kind_b: str) -> RunComparison:
    """Pair the rates of two runs by label and test every difference."""
    rows = []
    for label in (lab for lab in a if lab in b):
        p, test = two_proportion_test(a[label], b[label])
        rows.append(RateDifference(label, a[label], b[label], b[label].rate - a[label].rate,
                                   p, test, p is not None and p < ALPHA))
    return RunComparison(run_a, run_b, kind_a, kind_b, rows,
                         {k: v for k, v in a.items() if k not in b},
                         {k: v for k, v in b.items() if k not in a})
