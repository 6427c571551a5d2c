"""Rates a reader can trust: successes ``k`` of ``n`` trials with a 95% Wilson interval.

Every rate in ``results.json`` is serialised as ``{"k": k, "n": n, "rate": k/n,
"ci95": [low, high]}`` (:meth:`Rate.to_dict`). Samples under :data:`SMALL_SAMPLE` trials are
labelled as small wherever a rate is printed.

>>> Rate(9, 12).text()
'75.0% (9/12, 95% CI 47-91%, small sample)'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Z95 = 1.959963984540054
SMALL_SAMPLE = 30


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials (``(0, 1)`` when ``n == 0``)."""
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class Rate:
    """``k`` successes of ``n`` trials."""

    k: int
    n: int

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or isinstance(self.n, bool) or not 0 <= self.k <= self.n:
            raise ValueError(f"a rate needs integers 0 <= k <= n, got k={self.k!r}, n={self.n!r}")

    @classmethod
    def of(cls, mask: Any) -> Rate:
        """Rate of ``True`` in a boolean array or tensor."""
        flags = np.asarray(mask.cpu() if hasattr(mask, "cpu") else mask).astype(bool).ravel()
        return cls(int(flags.sum()), int(flags.size))

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else 0.0

    @property
    def ci95(self) -> tuple[float, float]:
        return wilson_interval(self.k, self.n)

    @property
    def small(self) -> bool:
        return self.n < SMALL_SAMPLE

    def text(self) -> str:
        """``"75.0% (9/12, 95% CI 47-91%, small sample)"``."""
        if self.n == 0:
            return "- (no trials)"
        low, high = self.ci95
        tail = ", small sample" if self.small else ""
        return (f"{100 * self.rate:.1f}% ({self.k}/{self.n}, 95% CI "
                f"{100 * low:.0f}-{100 * high:.0f}%{tail})")

    def to_dict(self) -> dict[str, Any]:
        low, high = self.ci95
        return {"k": self.k, "n": self.n, "rate": self.rate, "ci95": [low, high]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rate:
        if not isinstance(data, Mapping) or "k" not in data or "n" not in data:
            raise ValueError(f"a rate must be an object with 'k' and 'n', got {data!r}")
        return cls(int(data["k"]), int(data["n"]))
