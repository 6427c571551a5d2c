"""Projected Gradient Descent (Linf and L2) and the Basic Iterative Method.

* PGD: Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks",
  ICLR 2018 -- random start in the eps-ball, ``steps`` steps of size ``rel_stepsize * eps``
  along sign(grad) (Linf) or grad/||grad|| (L2), projected back onto the ball and [0, 1].
* BIM: Kurakin, Goodfellow & Bengio, "Adversarial Examples in the Physical World", ICLR-W 2017
  -- the same iteration without random start.

Samples keep their first successful iterate and, with ``early_stop=True`` (default), leave the
batch as soon as they succeed. ``early_stop=False`` runs every step on every sample (the
classic cost, used for fair speed comparisons) and keeps each sample's last successful iterate
(the final one where none succeeded); the success mask is the same either way. Each step's
forward judges its iterate, so the cost is ``steps`` forward+backward passes plus one forward
on the final iterate of the samples nothing succeeded for.

>>> from facerobust.attacks import PGD, Dodging
>>> attack = PGD("linf", steps=10, rel_stepsize=0.25)
>>> result = attack(net, probes, Dodging.for_model(net, refs), epsilons=[2/255, 4/255],
...                 generator=torch.Generator().manual_seed(0))           # doctest: +SKIP
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
class PGDOptions(AttackOptions):
    """``steps`` steps of ``rel_stepsize * eps`` (or ``abs_stepsize``); ``random_start`` in
    the ball; ``early_stop``: rows leave the batch at their first success."""

    steps: int = 10
    rel_stepsize: float = 0.25
    abs_stepsize: float | None = None
    random_start: bool = True
    early_stop: bool = True

    def __post_init__(self) -> None:
        check_int("steps", self.steps)
        check_positive("rel_stepsize", self.rel_stepsize)
        if self.abs_stepsize is not None:
            check_positive("abs_stepsize", self.abs_stepsize)


@dataclass(frozen=True)
class BIMOptions(PGDOptions):
    """PGD's options with BIM's defaults: no random start, steps of eps/10."""

    rel_stepsize: float = 0.1
    random_start: bool = False


class PGD(FixedEpsilonAttack):
    """Projected gradient descent with optional random start."""

    Options = PGDOptions
    options: PGDOptions
    reports_margins = True
    float32_verdicts = True  # early stopping waits for a float32 forward (iterative.py)

    def _stepsize(self, eps: torch.Tensor) -> torch.Tensor:
        if self.options.abs_stepsize is not None:
            return torch.full_like(eps, self.options.abs_stepsize)
        return eps * self.options.rel_stepsize

    def _direction(
        self, grad: torch.Tensor, state: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.threat.direction(grad), None

    def _plan(self, eps: torch.Tensor, start: torch.Tensor) -> Plan:
        return Plan(self.threat, self.options.steps, self._stepsize(eps), start,
                    self._direction, self.options.early_stop)

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
        """``margins`` (optional): receives each row's criterion margin of the returned point."""
        if self.options.random_start:
            start = self.threat.random_start(x, eps, generator)
        else:
            start = torch.zeros_like(x)
        return iterate(model, x, criterion, eps, self._plan(eps, start), tally=tally,
                       index=index, margins=margins)

    def perturb_from(
        self,
        model: nn.Module,
        x: torch.Tensor,
        criterion: Criterion,
        eps: torch.Tensor,
        start_from: torch.Tensor,
        *,
        tally: Tally | None = None,
        index: torch.Tensor | None = None,
        margins: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`perturb` warm-started from ``start_from`` instead of x / a random start (e.g.
        the adversarial found at a larger budget; projected onto the eps-ball)."""
        return iterate(model, x, criterion, eps, self._plan(eps, start_from - x), tally=tally,
                       index=index, margins=margins)


class BIM(PGD):
    """Basic Iterative Method: PGD without random start (default 10 steps of eps/10)."""

    Options = BIMOptions
    options: BIMOptions
