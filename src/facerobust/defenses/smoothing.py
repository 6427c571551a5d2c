"""Randomized smoothing (Cohen, Rosenfeld and Kolter, ICML 2019): the majority decision of a
base decider under Gaussian noise, with a certified L2 radius per input.

``g(x) = argmax_c P(f(x + e) = c)``, ``e ~ N(0, sigma^2 I)`` on the image in [0, 1] (the
noisy image is not clipped). :func:`certify` picks the top class on ``n0`` selection draws,
bounds its probability from below with a one-sided Clopper-Pearson bound at confidence
``1 - alpha`` on ``n`` fresh estimation draws, and certifies the radius
``sigma * Phi^-1(p_lower)`` (abstains when ``p_lower <= 1/2``). :func:`predict` is their
PREDICT: the top class when a two-sided binomial test separates it from the runner-up.

>>> import torch
>>> decider = threshold_decider(lambda x: x.mean(dim=(1, 2, 3)) - 0.5)
>>> cert = certify(decider, torch.full((1, 3, 4, 4), 0.9), SmoothingOptions(n0=20, n=200))
>>> cert.label, cert.radius is not None and cert.radius > 0.5
(1, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import beta, binomtest, norm

from facerobust.defenses.base import Defense

Tensor = torch.Tensor


@dataclass(frozen=True)
class SmoothingOptions:
    """Noise level, the two Monte Carlo budgets, the error level and the batch of draws."""

    sigma: float = 0.25
    n0: int = 100
    n: int = 1000
    alpha: float = 0.001
    batch: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.sigma > 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma!r}")
        for key in ("n0", "n", "batch"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha!r}")


@dataclass(frozen=True)
class Decider:
    """A base decision as classes: ``hard`` maps images (B, 3, H, W) to class ids (B,) int64;
    ``soft`` to differentiable class probabilities (B, classes) (what an adaptive attack
    follows); ``labels`` names the classes."""

    labels: tuple[str, ...]
    hard: Callable[[Tensor], Tensor]
    soft: Callable[[Tensor], Tensor]

    @property
    def classes(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Certificate:
    """CERTIFY's answer for one input: the class (``None``: abstain), its certified L2 radius,
    the lower confidence bound of its probability, its count among the ``n`` estimation draws,
    the class the ``n0`` selection draws chose, and the seconds it took."""

    label: int | None
    radius: float | None
    p_lower: float
    count: int
    n: int
    selected: int
    seconds: float

    @property
    def abstained(self) -> bool:
        return self.label is None

    def certified(self, label: int, radius: float) -> bool:
        """Is the smoothed decision certified to be ``label`` within L2 ``radius``?"""
        return self.label == label and self.radius is not None and self.radius >= radius


@dataclass(frozen=True)
class Prediction:
    """PREDICT's answer: the class (``None``: abstain) and the per-class counts it saw."""

    label: int | None
    counts: tuple[int, ...]


def threshold_decider(score: Callable[[Tensor], Tensor], temperature: float = 0.05,
                      labels: tuple[str, str] = ("reject", "accept")) -> Decider:
    """Two classes from a score that accepts when ``score(x) >= 0`` (class 1), with the soft
    decision ``sigmoid(score / temperature)``."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")

    def hard(x: Tensor) -> Tensor:
        return (score(x) >= 0).long()

    def soft(x: Tensor) -> Tensor:
        p = torch.sigmoid(score(x) / temperature)
        return torch.stack([1 - p, p], dim=1)

    return Decider(labels, hard, soft)


def lower_confidence_bound(k: int, n: int, alpha: float) -> float:
    """One-sided Clopper-Pearson lower bound on a binomial proportion at confidence
    ``1 - alpha`` after ``k`` successes of ``n`` draws (0 when ``k == 0``)."""
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    return 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))


def radius_of(p_lower: float, sigma: float) -> float | None:
    """Certified L2 radius ``sigma * Phi^-1(p_lower)``; ``None`` (abstain) when
    ``p_lower <= 1/2``."""
    return None if p_lower <= 0.5 else float(sigma * norm.ppf(p_lower))


def _single(x: Tensor) -> Tensor:
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"expected one image (1, C, H, W) or (C, H, W), got {tuple(x.shape)}")
    return x


def sample_counts(decider: Decider, x: Tensor, num: int, options: SmoothingOptions,
                  generator: torch.Generator) -> np.ndarray:
    """Counts per class of the base decision over ``num`` noisy copies of ``x``, drawn in
    batches of ``options.batch``."""
    x = _single(x)
    counts = np.zeros(decider.classes, dtype=np.int64)
    left = num
    with torch.no_grad():
        while left > 0:
            b = min(options.batch, left)
            noise = torch.randn((b, *x.shape[1:]), generator=generator, dtype=x.dtype)
            labels = decider.hard(x + options.sigma * noise.to(x.device)).cpu()
            counts += np.bincount(labels.numpy(), minlength=decider.classes)[:decider.classes]
            left -= b
    return counts


def _generator(options: SmoothingOptions, generator: torch.Generator | None
               ) -> torch.Generator:
    return generator if generator is not None else torch.Generator().manual_seed(options.seed)


def certify(decider: Decider, x: Tensor, options: SmoothingOptions,
            generator: torch.Generator | None = None) -> Certificate:
    """Cohen et al.'s CERTIFY for one image ``x`` (seeded by ``options.seed`` unless a
    ``generator`` is given)."""
    start = time.perf_counter()
    gen = _generator(options, generator)
    selected = int(sample_counts(decider, x, options.n0, options, gen).argmax())
    count = int(sample_counts(decider, x, options.n, options, gen)[selected])
    p_lower = lower_confidence_bound(count, options.n, options.alpha)
    radius = radius_of(p_lower, options.sigma)
    return Certificate(None if radius is None else selected, radius, p_lower, count,
                       options.n, selected, time.perf_counter() - start)


def majority(counts: np.ndarray, alpha: float) -> int | None:
    """The top class of ``counts`` unless a two-sided binomial test cannot tell it from the
    runner-up at level ``alpha`` (``None``: abstain)."""
    order = np.argsort(-np.asarray(counts), kind="stable")
    top, second = int(counts[order[0]]), int(counts[order[1]]) if len(order) > 1 else 0
    p_value = binomtest(top, top + second, 0.5).pvalue if top + second else 1.0
    return int(order[0]) if p_value <= alpha else None


def predict(decider: Decider, x: Tensor, options: SmoothingOptions,
            generator: torch.Generator | None = None) -> Prediction:
    """Cohen et al.'s PREDICT: :func:`majority` of ``n`` noisy draws of ``x``."""
    counts = sample_counts(decider, x, options.n, options, _generator(options, generator))
    return Prediction(majority(counts, options.alpha), tuple(int(c) for c in counts))


class GaussianNoise(Defense):
    """The smoothing defense (spec ``smooth:sigma=0.25,n=100``): as a transform, one draw of
    ``x + N(0, sigma^2 I)`` (clamped to [0, 1] for the model); a face system holding it decides
    by the majority of ``n`` draws (:func:`majority` at level ``alpha``, abstain = reject)."""

    name = "smooth"
    randomized = True

    def __init__(self, *, sigma: float = 0.25, n: int = 100, alpha: float = 0.001) -> None:
        super().__init__()
        SmoothingOptions(sigma=sigma, n0=1, n=n, alpha=alpha)  # the same checks
        self.sigma, self.n, self.alpha = float(sigma), int(n), float(alpha)

    def params(self) -> dict[str, Any]:
        return {"sigma": self.sigma, "n": self.n, "alpha": self.alpha}

    def transform(self, x: Tensor) -> Tensor:
        noise = torch.randn(x.shape, generator=self.generator, dtype=x.dtype).to(x.device)
        return (x + self.sigma * noise).clamp(0.0, 1.0)
