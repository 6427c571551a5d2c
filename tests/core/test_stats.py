from __future__ import annotations

import numpy as np
import pytest
import torch

from facerobust.core.stats import Rate, wilson_interval


def test_wilson_matches_published_values() -> None:
    # Newcombe (1998), Table I: 81/263 -> 0.2553-0.3662; 15/148 -> 0.0624-0.1605
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson_interval(15, 148) == pytest.approx((0.0624, 0.1605), abs=1e-4)
    assert wilson_interval(0, 12) == (0.0, pytest.approx(0.2425, abs=1e-4))
    assert wilson_interval(12, 12) == (pytest.approx(0.7575, abs=1e-4), 1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_interval_narrows_with_more_trials() -> None:
    widths = [np.subtract(*reversed(wilson_interval(n // 2, n))) for n in (10, 100, 1000)]
    assert widths[0] > widths[1] > widths[2]


def test_rate_from_masks_text_and_json() -> None:
    r = Rate.of(torch.tensor([True, False, True, True]))
    assert (r.k, r.n, r.rate) == (3, 4, 0.75) and r.small
    assert r.text() == "75.0% (3/4, 95% CI 30-95%, small sample)"
    assert Rate.of(np.ones(40, bool)).text() == "100.0% (40/40, 95% CI 91-100%)"
    d = r.to_dict()
    assert d["k"] == 3 and d["n"] == 4 and d["rate"] == 0.75 and len(d["ci95"]) == 2
    assert Rate.from_dict(d) == r
    assert Rate(0, 0).text() == "- (no trials)"


@pytest.mark.parametrize(("k", "n"), [(3, 2), (-1, 2), (True, 2)])
def test_bad_rates_are_refused(k: int, n: int) -> None:
    with pytest.raises(ValueError, match="a rate needs integers 0 <= k <= n"):
        Rate(k, n)
    with pytest.raises(ValueError, match="'k' and 'n'"):
        Rate.from_dict({"rate": 0.5})
