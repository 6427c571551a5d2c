"""The shared loop of iterative gradient attacks (BIM, PGD, MI-FGSM).

Each step does one forward+backward on the *active* rows; the success check comes from the
same forward that gives the gradient. With ``early_stop`` (the default, for "success on the
victim") a row that turns adversarial is recorded (first successful iterate) and dropped from
the batch, so finished samples cost nothing. Without it (full budget, as ART and torchattacks
run: for transfer, defenses and every "at budget eps" figure) every row runs all steps and the
*final* iterate is returned, judged by the last forward. After the last step one no-grad
forward checks the final iterate (it is the only iterate no gradient forward has seen).

``margins`` (optional, length N) receives each row's ``criterion.margin`` of the returned
iterate, taken from the forward that judged it (no extra pass): the minimal-epsilon search
interpolates between probes with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from facerobust.attacks.base import Tally, forward, forward_with_grad
from facerobust.attacks.criteria import Criterion
from facerobust.attacks.threat import Threat

# direction(grad, state) -> (unit step direction, new state)
Direction = Callable[[torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, torch.Tensor | None]]


@dataclass(frozen=True)
class Plan:
    """How to iterate: the threat, ``steps`` steps of ``stepsize`` (N,) along ``direction``
    from ``x + start``, and whether rows leave the batch when they succeed."""

    threat: Threat
    steps: int
    stepsize: torch.Tensor
    start: torch.Tensor
    direction: Direction
    early_stop: bool


def iterate(
    model: nn.Module,
    x: torch.Tensor,
    criterion: Criterion,
    eps: torch.Tensor,
    plan: Plan,
    *,
    tally: Tally | None,
    index: torch.Tensor | None,
    margins: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``plan.steps`` projected steps from ``x + plan.start``; returns (adversarials,
    success)."""
    n = x.shape[0]
    dev = x.device
    threat, steps, early_stop, direction = plan.threat, plan.steps, plan.early_stop, \
        plan.direction
    start, stepsize = plan.start, plan.stepsize
    gidx = index if index is not None else torch.arange(n, device=dev)
    adv = threat.clip(x, x + start, eps) if start.any() else x.clone()
    result = adv.clone()
    success = torch.zeros(n, dtype=torch.bool, device=dev)
    act = torch.arange(n, device=dev)
    xa, ea, aa, crit = x, eps, adv, criterion
    sa = stepsize.view(-1, *([1] * (x.ndim - 1))).to(dev, x.dtype)
    state: torch.Tensor | None = None
    for t in range(steps + 1):
        last = t == steps
        if last:
            out, grad = forward(model, aa, crit), None
        else:
            out, grad = forward_with_grad(model, aa, crit)
        if tally is not None:
            tally.add(gidx[act])
        hit = crit.is_adversarial(out)
        new = hit & ~success[act]
        marg = None if margins is None else crit.margin(out)
        if new.any():
            result[act[new]] = aa[new]
            success[act[new]] = True
            if marg is not None and margins is not None:
                margins[act[new]] = marg[new]
        if last or grad is None:
            break
        if early_stop and hit.any():
            keep = (~hit).nonzero()[:, 0]
            if len(keep) == 0:
                break
            act, xa, ea, aa = act[keep], xa[keep], ea[keep], aa[keep]
            grad, sa = grad[keep], sa[keep]
            crit = crit.subset(keep)
            state = None if state is None else state[keep]
        d, state = direction(grad, state)
        aa = threat.clip(xa, aa + sa * d, ea)
    if not early_stop:  # full budget: the final iterate, judged as it is
        result[act] = aa
        success[act] = hit
        if marg is not None and margins is not None:
            margins[act] = marg
        return result, success
    fail = ~success[act]
    if fail.any():
        result[act[fail]] = aa[fail]
        if marg is not None and margins is not None:
            margins[act[fail]] = marg[fail]
    return result, success
