"""Momentum Iterative FGSM.

Dong et al., "Boosting Adversarial Attacks with Momentum", CVPR 2018. Accumulates
``g = decay * g + grad / mean|grad|`` and steps ``eps / steps`` along sign(g) (Linf) or
g/||g|| (L2); no random start. Momentum makes the perturbation transfer better to other models.

>>> from facerobust.attacks import MIFGSM, Impersonation
>>> result = MIFGSM(steps=10)(net, probes, Impersonation.for_model(net, victims),
...                           epsilons=[8/255])                          # doctest: +SKIP
"""

from __future__ import annotations

import torch
from torch import nn

from facerobust.attacks.base import (
    FixedEpsilonAttack,
    Norm,
    Tally,
    check_norm,
    check_positive,
    normalized,
)
from facerobust.attacks.criteria import Criterion
from facerobust.attacks.iterative import iterate


class MIFGSM(FixedEpsilonAttack):
    """Momentum iterative attack (Linf by default, L2 supported)."""

    reports_margins = True

    def __init__(
        self, *, norm: Norm = "linf", steps: int = 10, decay: float = 1.0, early_stop: bool = True
    ) -> None:
        self.norm = check_norm(norm)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        check_positive("decay", decay, allow_zero=True)
        self.steps = steps
        self.decay = float(decay)
        self.early_stop = bool(early_stop)

    def _direction(
        self, grad: torch.Tensor, state: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        g = grad / (grad.abs().flatten(1).mean(dim=1).view(-1, 1, 1, 1) + 1e-12)
        state = g if state is None else self.decay * state + g
        return normalized(state, self.norm), state

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
        margins: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return iterate(
            model, x, criterion, eps, norm=self.norm, steps=self.steps,
            stepsize=eps / self.steps, start=torch.zeros_like(x), direction=self._direction,
            early_stop=self.early_stop, tally=tally, index=index, margins=margins,
        )
