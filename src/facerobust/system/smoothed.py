"""The gate's smoothed decision: with the ``smooth`` defense (spec ``smooth:sigma=0.25,n=100``)
the face system decides by the majority of ``n`` noisy draws of the chip through the defended
model (:class:`facerobust.defenses.smoothing.GaussianNoise` adds the noise), as Cohen et
al.'s PREDICT; an abstention rejects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from facerobust.defenses import DefendedModel
from facerobust.defenses.base import Compose, Defense, Identity
from facerobust.defenses.smoothing import GaussianNoise, majority
from facerobust.models.base import accepts

BATCH = 50  # noisy copies per forward pass


@dataclass(frozen=True)
class Vote:
    """The smoothed decision over templates: the template row it matches (``None``: no
    match or abstain), whether it abstained, and the per-class counts (the last class: no
    match)."""

    match: int | None
    abstained: bool
    counts: tuple[int, ...]


def smoothing_of(defense: Defense) -> GaussianNoise | None:
    """The ``smooth`` stage of a (composed) defense, if any."""
    return next((m for m in defense.modules() if isinstance(m, GaussianNoise)), None)


def without_noise(defense: Defense) -> Defense:
    """``defense`` with its ``smooth`` stage left out (what enrolment and the reported
    embedding go through: templates stay noise-free)."""
    if isinstance(defense, GaussianNoise):
        return Identity()
    if isinstance(defense, Compose):
        stages = [d for d in defense.stages
                  if isinstance(d, Defense) and not isinstance(d, GaussianNoise)]
        return Identity() if not stages else stages[0] if len(stages) == 1 else Compose(stages)
    return defense


def smoothed_vote(model: DefendedModel, chip: torch.Tensor, templates: np.ndarray,
                  threshold: float, noise: GaussianNoise) -> Vote:
    """Majority over ``noise.n`` draws of the nearest template within ``threshold`` (else no
    match) for one chip (1, 3, s, s); ``model`` is the defended model (it adds the noise)."""
    t = torch.as_tensor(templates).float()
    k = len(t)
    counts = np.zeros(k + 1, dtype=np.int64)
    left = noise.n
    with torch.no_grad():
        while left > 0:
            b = min(BATCH, left)
            emb = model(chip.expand(b, *chip.shape[1:])).float()
            dist = model.distance(emb.repeat_interleave(k, 0), t.repeat(b, 1)).view(b, k)
            best, i = dist.min(dim=1)
            label = torch.where(accepts(best, threshold), i, torch.full_like(i, k))
            counts += np.bincount(label.numpy(), minlength=k + 1)
            left -= b
    top = majority(counts, noise.alpha)
    return Vote(None if top is None or top == k else top, top is None,
                tuple(int(c) for c in counts))
