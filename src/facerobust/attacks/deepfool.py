"""DeepFool (L2 and Linf).

Moosavi-Dezfooli, Fawzi & Frossard, "DeepFool: a simple and accurate method to fool deep
neural networks", CVPR 2016. Linearises the criterion's margin ``f`` (``f > 0`` = adversarial)
around the current iterate and jumps to the linearised boundary:
``r = (|f| + 1e-4) / ||grad f||_2^2 * grad f`` (L2) or ``(|f| + 1e-4) / ||grad f||_1 *
sign(grad f)`` (Linf), accumulating ``r`` and applying ``(1 + overshoot)`` to the sum. For a
classifier the margin is taken against the currently strongest competing class (the original
compares every class; this costs one gradient per step instead of one per class). Finished
samples leave the batch.

>>> from facerobust.attacks import DeepFool, Misclassification
>>> result = DeepFool("l2", steps=50)(classifier, x, Misclassification(y),
...                                       epsilons=[math.inf])        # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from facerobust.attacks.base import (
    AttackOptions,
    MinimizationAttack,
    Minimized,
    Tally,
    check_int,
    check_positive,
)
from facerobust.attacks.criteria import Criterion
from facerobust.attacks.threat import L2, Threat


@dataclass(frozen=True)
class DeepFoolOptions(AttackOptions):
    """At most ``steps`` linearised steps; the sum is scaled by ``1 + overshoot``."""

    steps: int = 50
    overshoot: float = 0.02

    def __post_init__(self) -> None:
        check_int("steps", self.steps)
        check_positive("overshoot", self.overshoot, allow_zero=True)


class DeepFool(MinimizationAttack):
    """Minimal-perturbation attack by iterated linearisation of the decision boundary."""

    Options = DeepFoolOptions
    options: DeepFoolOptions
    default_threat: ClassVar[Threat] = L2

    def minimize(
        self,
        model: nn.Module,
        x: torch.Tensor,
        criterion: Criterion,
        *,
        generator: torch.Generator | None,
        tally: Tally,
    ) -> Minimized:
        n, dev = x.shape[0], x.device
        result = x.clone()
        known = torch.zeros(n, dtype=torch.bool, device=dev)
        act = torch.arange(n, device=dev)
        xa, crit = x, criterion
        total = torch.zeros_like(x)
        adv = x.clone()
        for _ in range(self.options.steps + 1):
            adv = adv.detach().requires_grad_(True)
            with torch.enable_grad():
                out = model(adv)
                crit.check(out)
                f = crit.margin(out)
                (grad,) = torch.autograd.grad(f.sum(), adv)
            tally.add(act)
            with torch.no_grad():
                hit = crit.is_adversarial(out)
                if hit.any():
                    result[act[hit]] = adv[hit].detach()
                    known[act[hit]] = True
                    keep = (~hit).nonzero()[:, 0]
                    if len(keep) == 0:
                        return Minimized(result, known)
                    act, xa, total, f, grad = act[keep], xa[keep], total[keep], f[keep], grad[keep]
                    crit = crit.subset(keep)
                size = f.abs() + 1e-4
                total = total + self.threat.linear_step(grad, size)
                adv = (xa + (1 + self.options.overshoot) * total).clamp(0.0, 1.0)
        result[act] = adv.detach()  # the last step, not judged yet
        return Minimized(result, known)
