"""Momentum Iterative FGSM.

Dong et al., "Boosting Adversarial Attacks with Momentum", CVPR 2018. Accumulates
``g = decay * g + grad / mean|grad|`` and steps ``eps / steps`` along sign(g) (Linf) or
g/||g|| (L2); no random start. Momentum makes the perturbation transfer better to other models.

>>> from facerobust.attacks import MIFGSM, Impersonation
>>> result = MIFGSM(steps=10)(net, probes, Impersonation.for_model(net, victims),
...                           epsilons=[8/255])                          # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from facerobust.attacks.base import (
    AttackOptions,
    FixedEpsilonAttack,
    Tally,
    check_int,
    check_positive,
)
from facerobust.attacks.criteria import Criterion
from facerobust.attacks.iterative import Plan, iterate


@dataclass(frozen=True)
class MIFGSMOptions(AttackOptions):
    """``steps`` steps of eps/steps; momentum ``decay``; ``early_stop`` as in PGD."""

    steps: int = 10
    decay: float = 1.0
    early_stop: bool = True

    def __post_init__(self) -> None:
        check_int("steps", self.steps)
        check_positive("decay", self.decay, allow_zero=True)


class MIFGSM(FixedEpsilonAttack):
    """Momentum iterative attack (Linf by default, L2 supported)."""

    Options = MIFGSMOptions
    options: MIFGSMOptions
    reports_margins = True
    float32_verdicts = True  # early stopping waits for a float32 forward (iterative.py)

    def _direction(
        self, grad: torch.Tensor, state: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        g = grad / (grad.abs().flatten(1).mean(dim=1).view(-1, 1, 1, 1) + 1e-12)
        state = g if state is None else self.options.decay * state + g
        return self.threat.direction(state), state

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
        o = self.options
        plan = Plan(self.threat, o.steps, eps / o.steps, torch.zeros_like(x), self._direction,
                    o.early_stop)
        return iterate(model, x, criterion, eps, plan, tally=tally, index=index,
                       margins=margins)
