"""Carlini & Wagner L2 attack.

Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017.
Optimises ``w`` with ``x_adv = (tanh(w) + 1) / 2`` (always inside [0, 1]) to minimise
``||x_adv - x||_2^2 + c * max(-margin(x_adv), -confidence)`` with Adam, where ``margin`` is the
criterion's margin (``Z_other - Z_label`` for classifiers, ``distance - threshold`` for dodging,
``threshold - distance`` for impersonation). A per-sample binary search over ``c``
(``binary_search_steps``) keeps the smallest successful perturbation. Samples whose loss stops
improving leave the batch early (``abort_early``). Each epsilon of the call clips the found
perturbation to that L2 budget and re-checks success; ``epsilons=[math.inf]`` keeps it as is.

>>> from facerobust.attacks import CarliniWagnerL2, Misclassification
>>> cw = CarliniWagnerL2(binary_search_steps=5, steps=100, lr=0.01, initial_const=1.0)
>>> result = cw(classifier, x, Misclassification(y),
...             epsilons=[0.5, 1.0, math.inf])                       # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from facerobust.attacks.base import (
    AttackOptions,
    MinimizationAttack,
    Tally,
    check_int,
    check_positive,
)
from facerobust.attacks.criteria import Criterion
from facerobust.attacks.threat import L2, L2Ball, Threat


@dataclass(frozen=True)
class CWOptions(AttackOptions):
    """``binary_search_steps`` rounds over the constant c (from ``initial_const``), each of
    ``steps`` Adam steps at ``lr``; ``confidence`` margin; ``abort_early`` on a plateau."""

    binary_search_steps: int = 9
    steps: int = 100
    lr: float = 0.01
    initial_const: float = 1e-3
    confidence: float = 0.0
    abort_early: bool = True

    def __post_init__(self) -> None:
        check_int("binary_search_steps", self.binary_search_steps)
        check_int("steps", self.steps)
        check_positive("lr", self.lr)
        check_positive("initial_const", self.initial_const)
        check_positive("confidence", self.confidence, allow_zero=True)


class CarliniWagnerL2(MinimizationAttack):
    """CW-L2 with Adam and a per-sample binary search over the constant ``c``."""

    Options = CWOptions
    options: CWOptions
    threats: ClassVar[tuple[type[Threat], ...]] = (L2Ball,)
    default_threat: ClassVar[Threat] = L2

    def minimize(
        self,
        model: nn.Module,
        x: torch.Tensor,
        criterion: Criterion,
        *,
        generator: torch.Generator | None,
        tally: Tally,
    ) -> torch.Tensor:
        n, dev, o = x.shape[0], x.device, self.options
        w0 = torch.atanh((2 * x - 1).clamp(-1 + 1e-6, 1 - 1e-6))
        const = torch.full((n,), o.initial_const, device=dev, dtype=x.dtype)
        lo = torch.zeros_like(const)
        hi = torch.full_like(const, math.inf)
        best_adv = x.clone()
        best_l2 = torch.full_like(const, math.inf)
        check_every = max(o.steps // 10, 1)
        b1, b2 = 0.9, 0.999
        for _ in range(o.binary_search_steps):
            hit_c = torch.zeros(n, dtype=torch.bool, device=dev)
            act = torch.arange(n, device=dev)
            w, xa, ca = w0.clone(), x, const
            crit = criterion
            m = torch.zeros_like(w)
            v = torch.zeros_like(w)
            prev = torch.full_like(const, math.inf)
            for it in range(1, o.steps + 1):
                w.requires_grad_(True)
                with torch.enable_grad():
                    adv = (torch.tanh(w) + 1) / 2
                    out = model(adv)
                    crit.check(out)
                    margin = crit.margin(out)
                    l2 = (adv - xa).pow(2).flatten(1).sum(dim=1)
                    loss = l2 + ca * torch.clamp(-margin, min=-o.confidence)
                    (grad,) = torch.autograd.grad(loss.sum(), w)
                tally.add(act)
                with torch.no_grad():
                    ok = crit.is_adversarial(out) & (margin >= o.confidence)
                    better = ok & (l2 < best_l2[act])
                    if better.any():
                        idx = act[better]
                        best_l2[idx] = l2[better]
                        best_adv[idx] = adv[better]
                    hit_c[act[ok]] = True
                    w = w.detach()
                    m.mul_(b1).add_(grad, alpha=1 - b1)
                    v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
                    mhat = m / (1 - b1**it)
                    vhat = v / (1 - b2**it)
                    w = w - o.lr * mhat / (vhat.sqrt() + 1e-8)
                    if o.abort_early and it % check_every == 0:
                        keep = (loss <= prev * 0.9999).nonzero()[:, 0]
                        if len(keep) == 0:
                            break
                        if len(keep) < len(act):
                            act, w, m, v = act[keep], w[keep], m[keep], v[keep]
                            xa, ca = xa[keep], ca[keep]
                            crit = crit.subset(keep)
                            prev = loss[keep].detach()
                        else:
                            prev = loss.detach()
            # per-sample binary search on c
            hi = torch.where(hit_c, torch.minimum(hi, const), hi)
            lo = torch.where(hit_c, lo, torch.maximum(lo, const))
            const = torch.where(
                torch.isinf(hi), const * 10, (lo + hi) / 2
            )
        return best_adv
