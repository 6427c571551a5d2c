"""Fast Gradient Sign Method (Linf) and Fast Gradient Method (L2).

Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015.
One gradient of the criterion's loss at the clean image; ``x + eps * sign(grad)`` (Linf) or
``x + eps * grad / ||grad||`` (L2), clipped to [0, 1]. A sweep over many epsilons reuses the
single gradient and only spends one no-grad forward per epsilon on samples that have not
already succeeded at a smaller epsilon. That forward is the only way to know success, and it
costs about half the attack: a caller that scores the adversarials itself (on other models,
or its own batch) calls :meth:`FGM.craft` instead -- one forward+backward and no success mask,
like ART and torchattacks.

>>> from facerobust.attacks import FGSM, Misclassification
>>> result = FGSM()(classifier, x, Misclassification(y), epsilons=[1/255, 2/255])  # doctest: +SKIP
>>> result.success_rate()                                                           # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from facerobust.attacks.base import (
    AttackOptions,
    FixedEpsilonAttack,
    RunOutput,
    Tally,
    check_epsilons,
    check_inputs,
    forward,
    forward_with_grad,
    frozen,
)
from facerobust.attacks.criteria import Criterion
from facerobust.attacks.threat import L2, LINF, Threat


@dataclass(frozen=True)
class FGMOptions(AttackOptions):
    """FGSM/FGM take no options: one step of the full budget."""


class FGM(FixedEpsilonAttack):
    """Single-step gradient attack; L2 by default (FGSM is the Linf variant)."""

    Options = FGMOptions
    default_threat: ClassVar[Threat] = L2

    def perturb(
        self,
        model: nn.Module,
        x: torch.Tensor,
        criterion: Criterion,
        eps: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        tally: Tally | None = None,
        index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, grad = forward_with_grad(model, x, criterion)
        success = criterion.is_adversarial(out)  # clean rows already adversarial stay x
        idx = index if index is not None else torch.arange(x.shape[0], device=x.device)
        if tally is not None:
            tally.add(idx)
        adv = self.threat.step(x, x, eps, self.threat.direction(grad), eps)
        adv[success] = x[success]
        todo = (~success).nonzero()[:, 0]
        if len(todo):
            sub = criterion if len(todo) == len(x) else criterion.subset(todo)
            success[todo] = sub.is_adversarial(forward(model, adv[todo], sub))
            if tally is not None:
                tally.add(idx[todo])
        return adv, success

    def craft(
        self,
        model: nn.Module,
        x: torch.Tensor,
        criterion: Criterion,
        *,
        epsilons: Sequence[float],
        generator: torch.Generator | None = None,
    ) -> list[torch.Tensor]:
        """One forward+backward, ``x + eps * direction`` per epsilon (rows adversarial
        already stay ``x``), no success forward; at a single epsilon equal to ``clipped``."""
        eps = check_epsilons(epsilons)
        check_inputs(x, criterion)
        x = x.detach()
        with frozen(model):
            out, grad = forward_with_grad(model, x, criterion)
        clean = criterion.is_adversarial(out).view(-1, 1, 1, 1)
        d = self.threat.direction(grad)
        out_eps = []
        for e in eps:
            e_t = torch.full((len(x),), e, dtype=x.dtype, device=x.device)
            out_eps.append(torch.where(clean, x, self.threat.step(x, x, e_t, d, e_t)))
        return out_eps

    def _run(
        self,
        model: nn.Module,
        x: torch.Tensor,
        criterion: Criterion,
        eps: list[float],
        generator: torch.Generator | None,
        tally: Tally,
    ) -> RunOutput:
        n = x.shape[0]
        out, grad = forward_with_grad(model, x, criterion)
        tally.add(None)
        step = self.threat.direction(grad)
        found = criterion.is_adversarial(out)
        best = x.clone()
        by_eps: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}
        for e in sorted(set(eps)):
            adv = best.clone()
            todo = (~found).nonzero()[:, 0]
            if len(todo):
                xs = x[todo]
                e_t = torch.full((len(todo),), e, dtype=x.dtype, device=x.device)
                a = self.threat.step(xs, xs, e_t, step[todo], e_t)
                sub = criterion if len(todo) == n else criterion.subset(todo)
                s = sub.is_adversarial(forward(model, a, sub))
                tally.add(todo)
                adv[todo] = a
                best[todo[s]] = a[s]
                found[todo[s]] = True
            by_eps[e] = (adv, found.clone())
        raw = [by_eps[e][0] for e in eps]
        return raw, [r.clone() for r in raw], torch.stack([by_eps[e][1] for e in eps]).cpu()


class FGSM(FGM):
    """Fast Gradient Sign Method: the Linf single-step attack."""

    default_threat: ClassVar[Threat] = LINF
