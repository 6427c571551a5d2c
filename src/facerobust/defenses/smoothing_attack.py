"""The adaptive attack on a smoothed decision (Salman et al., NeurIPS 2019): L2 PGD on
``-log E_noise[soft(x + delta + noise)[label]]`` with Expectation over Transformation (fresh
Gaussian draws every step), inside the certified radius; judged by re-estimating the smoothed
decision with :func:`~facerobust.defenses.smoothing.predict`. A certificate is sound only if
no such attack flips it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from facerobust.attacks.threat import L2
from facerobust.defenses.smoothing import Decider, SmoothingOptions, predict

Tensor = torch.Tensor


@dataclass(frozen=True)
class SmoothAttackOptions:
    """PGD steps, noise draws averaged per step (EOT), and the step size as a fraction of the
    radius."""

    steps: int = 20
    eot: int = 16
    step_fraction: float = 0.25

    def __post_init__(self) -> None:
        for key in ("steps", "eot"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
        if not self.step_fraction > 0:
            raise ValueError(f"step_fraction must be > 0, got {self.step_fraction!r}")


@dataclass(frozen=True)
class SmoothAttackOutcome:
    """The adversarial image, its L2 distance from the input, and the smoothed decision there
    (``None``: PREDICT abstains); ``flipped`` when that decision is another class."""

    adversarial: Tensor
    distance: float
    label: int | None
    flipped: bool


def eot_pgd(decider: Decider, x: Tensor, label: int, radius: float, sigma: float,
            options: SmoothAttackOptions, generator: torch.Generator) -> Tensor:
    """The image within L2 ``radius`` of ``x`` (and in [0, 1]) that PGD finds least likely to
    be decided ``label`` under Gaussian noise of ``sigma``."""
    eps = torch.tensor([radius], dtype=x.dtype)
    adv = x.detach().clone()
    step = options.step_fraction * radius
    for _ in range(options.steps):
        adv.requires_grad_(True)
        noise = torch.randn((options.eot, *x.shape[1:]), generator=generator, dtype=x.dtype)
        probs = decider.soft(adv + sigma * noise.to(x.device))[:, label]
        loss = -torch.log(probs.mean().clamp_min(1e-12))
        (grad,) = torch.autograd.grad(loss, adv)
        with torch.no_grad():
            adv = L2.clip(x, adv + step * L2.direction(grad), eps)
    return adv.detach()


def attack_certificate(decider: Decider, x: Tensor, label: int, radius: float,
                       smoothing: SmoothingOptions, options: SmoothAttackOptions,
                       generator: torch.Generator | None = None) -> SmoothAttackOutcome:
    """Attack the smoothed decision ``label`` of ``x`` within ``radius`` and re-estimate it."""
    gen = generator if generator is not None else torch.Generator().manual_seed(smoothing.seed)
    adv = eot_pgd(decider, x, label, radius, smoothing.sigma, options, gen)
    found = predict(decider, adv, smoothing, gen).label
    distance = float(L2.norm(adv - x)[0])
    return SmoothAttackOutcome(adv, distance, found, found is not None and found != label)
