"""Projected Gradient Descent (Linf and L2) and the Basic Iterative Method.

* PGD: Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks",
  ICLR 2018 -- random start in the eps-ball, ``steps`` steps of size ``rel_stepsize * eps``
  along sign(grad) (Linf) or grad/||grad|| (L2), projected back onto the ball and [0, 1].
* BIM: Kurakin, Goodfellow & Bengio, "Adversarial Examples in the Physical World", ICLR-W 2017
  -- the same iteration without random start.

Samples keep their first successful iterate and, with ``early_stop=True`` (default), leave the
batch as soon as they succeed. ``early_stop=False`` runs every step on every sample (the
classic cost, used for fair speed comparisons).

>>> from facerobust.attacks import PGD, Dodging
>>> attack = PGD(norm="linf", steps=10, rel_stepsize=0.25)
>>> result = attack(net, probes, Dodging.for_model(net, refs), epsilons=[2/255, 4/255],
...                 generator=torch.Generator().manual_seed(0))           # doctest: +SKIP
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
    random_in_ball,
)
from facerobust.attacks.criteria import Criterion
from facerobust.attacks.iterative import iterate


class PGD(FixedEpsilonAttack):
    """Projected gradient descent with optional random start."""

    reports_margins = True

    def __init__(
        self,
        *,
        norm: Norm = "linf",
        steps: int = 10,
        rel_stepsize: float = 0.25,
        abs_stepsize: float | None = None,
        random_start: bool = True,
        early_stop: bool = True,
    ) -> None:
        self.norm = check_norm(norm)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        check_positive("rel_stepsize", rel_stepsize)
        if abs_stepsize is not None:
            check_positive("abs_stepsize", abs_stepsize)
        self.steps = steps
        self.rel_stepsize = float(rel_stepsize)
        self.abs_stepsize = None if abs_stepsize is None else float(abs_stepsize)
        self.random_start = bool(random_start)
        self.early_stop = bool(early_stop)

    def _stepsize(self, eps: torch.Tensor) -> torch.Tensor:
        if self.abs_stepsize is not None:
            return torch.full_like(eps, self.abs_stepsize)
        return eps * self.rel_stepsize

    def _direction(
        self, grad: torch.Tensor, state: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return normalized(grad, self.norm), None

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
        start_from: torch.Tensor | None = None,
        margins: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``start_from`` (optional): points to start from instead of x / a random start (warm
        start, e.g. the adversarial found at a larger budget; projected onto the eps-ball).
        ``margins`` (optional): receives each row's criterion margin of the returned point."""
        if start_from is not None:
            start = start_from - x
        elif self.random_start:
            start = random_in_ball(x, eps, self.norm, generator)
        else:
            start = torch.zeros_like(x)
        return iterate(
            model, x, criterion, eps, norm=self.norm, steps=self.steps,
            stepsize=self._stepsize(eps), start=start, direction=self._direction,
            early_stop=self.early_stop, tally=tally, index=index, margins=margins,
        )


class BIM(PGD):
    """Basic Iterative Method: PGD without random start (default 10 steps of eps/10)."""

    def __init__(
        self,
        *,
        norm: Norm = "linf",
        steps: int = 10,
        rel_stepsize: float = 0.1,
        abs_stepsize: float | None = None,
        early_stop: bool = True,
    ) -> None:
        super().__init__(
            norm=norm, steps=steps, rel_stepsize=rel_stepsize, abs_stepsize=abs_stepsize,
            random_start=False, early_stop=early_stop,
        )
