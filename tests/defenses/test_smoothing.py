"""Randomized smoothing: the Clopper-Pearson bound against exact binomial tails, CERTIFY on a
linear decision whose exact radius is known, PREDICT, and the EOT-PGD attack."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import binom, norm

from facerobust.defenses.smoothing import (
    SmoothingOptions,
    certify,
    lower_confidence_bound,
    predict,
    radius_of,
    sample_counts,
    threshold_decider,
)
from facerobust.defenses.smoothing_attack import SmoothAttackOptions, attack_certificate

SHAPE = (1, 3, 4, 4)
D = math.prod(SHAPE)


def linear(x: torch.Tensor) -> torch.Tensor:
    """Signed L2 distance to the hyperplane ``mean(x) = 0.5``."""
    return (x.flatten(1) - 0.5).sum(1) / math.sqrt(D)


def at_distance(c: float) -> torch.Tensor:
    """An image at signed L2 distance ``c`` from that hyperplane."""
    return torch.full(SHAPE, 0.5 + c / math.sqrt(D))


@pytest.mark.parametrize(("n", "alpha"), [(10, 0.05), (100, 0.001), (1000, 0.01)])
def test_lower_bound_is_the_exact_binomial_tail(n: int, alpha: float) -> None:
    for k in (1, n // 3, n - 1, n):
        p = lower_confidence_bound(k, n, alpha)
        # Clopper-Pearson: the p at which seeing k or more successes has probability alpha
        assert binom.sf(k - 1, n, p) == pytest.approx(alpha, rel=1e-6)
    assert lower_confidence_bound(0, n, alpha) == 0.0


@pytest.mark.parametrize("p", [0.3, 0.6, 0.9, 0.98])
def test_lower_bound_covers_with_probability_at_least_one_minus_alpha(p: float) -> None:
    n, alpha = 200, 0.05
    k = np.arange(n + 1)
    wrong = np.array([lower_confidence_bound(int(i), n, alpha) > p for i in k])
    assert 0 < binom.pmf(k[wrong], n, p).sum() <= alpha  # exact, over every outcome


def test_lower_bound_and_radius_validate() -> None:
    with pytest.raises(ValueError, match="0 <= k <= n"):
        lower_confidence_bound(5, 4, 0.01)
    assert radius_of(0.5, 0.25) is None
    assert radius_of(norm.cdf(2.0), 0.25) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="alpha must be in"):
        SmoothingOptions(alpha=0.0)
    with pytest.raises(ValueError, match="n0 must be an integer"):
        SmoothingOptions(n0=0)


def test_counts_follow_the_gaussian_probability() -> None:
    decider = threshold_decider(linear)
    opts = SmoothingOptions(sigma=0.5, batch=64)
    counts = sample_counts(decider, at_distance(0.25), 4000, opts,
                           torch.Generator().manual_seed(1))
    assert counts.sum() == 4000
    p = norm.cdf(0.25 / 0.5)  # P(c + sigma * z >= 0)
    assert counts[1] / 4000 == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / 4000))


def test_certified_radius_is_below_the_exact_one_and_close() -> None:
    decider = threshold_decider(linear)
    for c, sigma in ((0.3, 0.25), (0.6, 0.5), (-0.4, 0.5)):
        cert = certify(decider, at_distance(c), SmoothingOptions(sigma=sigma, n=5000, seed=3))
        assert cert.label == (1 if c > 0 else 0)
        assert cert.radius is not None and 0.7 * abs(c) < cert.radius <= abs(c)
        assert cert.certified(cert.label, cert.radius) and not cert.certified(cert.label, 1.0)


def test_certify_abstains_at_the_boundary_and_is_reproducible() -> None:
    decider = threshold_decider(linear)
    opts = SmoothingOptions(sigma=0.5, n0=50, n=500, seed=7)
    cert = certify(decider, at_distance(0.0), opts)
    assert cert.abstained and cert.radius is None and cert.p_lower < 0.5
    again = certify(decider, at_distance(0.0), opts)
    assert (again.count, again.selected) == (cert.count, cert.selected)


def test_predict_abstains_only_near_the_boundary() -> None:
    decider = threshold_decider(linear)
    opts = SmoothingOptions(sigma=0.5, n=1000, alpha=0.001)
    assert predict(decider, at_distance(0.5), opts).label == 1
    assert predict(decider, at_distance(-0.5), opts).label == 0
    tie = predict(decider, at_distance(0.0), opts)
    assert tie.label is None and sum(tie.counts) == 1000


def test_eot_pgd_cannot_flip_within_the_radius_but_does_beyond_it() -> None:
    decider = threshold_decider(linear)
    opts = SmoothingOptions(sigma=0.25, n=2000, seed=2)
    x = at_distance(0.5)
    cert = certify(decider, x, opts)
    assert cert.label == 1 and cert.radius is not None
    attack = SmoothAttackOptions(steps=10, eot=8)
    inside = attack_certificate(decider, x, 1, cert.radius, opts, attack)
    assert not inside.flipped and inside.distance <= cert.radius + 1e-5
    beyond = attack_certificate(decider, x, 1, 1.0, opts, attack)  # twice the true distance
    assert beyond.flipped and beyond.label == 0
