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
>>> result = DeepFool(norm="l2", steps=50)(classifier, x, Misclassification(y),
...                                       epsilons=[math.inf])        # doctest: +SKIP
"""

from __future__ import annotations

import torch
from torch import nn

from facerobust.attacks.base import (
    MinimizationAttack,
    Norm,
    Tally,
    check_norm,
    check_positive,
    flat_norm,
)
from facerobust.attacks.criteria import Criterion


class DeepFool(MinimizationAttack):
    """Minimal-perturbation attack by iterated linearisation of the decision boundary."""

    def __init__(self, *, norm: Norm = "l2", steps: int = 50, overshoot: float = 0.02) -> None:
        self.norm = check_norm(norm)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        check_positive("overshoot", overshoot, allow_zero=True)
        self.steps = steps
        self.overshoot = float(overshoot)

    def minimize(
        self,
        model: nn.Module,
        x: torch.Tensor,
        criterion: Criterion,
        *,
        generator: torch.Generator | None,
        tally: Tally,
    ) -> torch.Tensor:
        n, dev = x.shape[0], x.device
        result = x.clone()
        act = torch.arange(n, device=dev)
        xa, crit = x, criterion
        total = torch.zeros_like(x)
        adv = x.clone()
        view = (-1,) + (1,) * (x.ndim - 1)
        for _ in range(self.steps + 1):
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
                    keep = (~hit).nonzero()[:, 0]
                    if len(keep) == 0:
                        return result
                    act, xa, total, f, grad = act[keep], xa[keep], total[keep], f[keep], grad[keep]
                    crit = crit.subset(keep)
                size = f.abs() + 1e-4
                if self.norm == "l2":
                    r = (size / (flat_norm(grad, "l2").pow(2) + 1e-12)).view(view) * grad
                else:
                    r = (size / (grad.abs().flatten(1).sum(dim=1) + 1e-12)).view(view) * grad.sign()
                total = total + r
                adv = (xa + (1 + self.overshoot) * total).clamp(0.0, 1.0)
        result[act] = adv.detach()
        return result
