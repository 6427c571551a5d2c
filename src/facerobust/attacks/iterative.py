"""The shared loop of iterative gradient attacks (BIM, PGD, MI-FGSM).

Each step does one forward+backward on the *active* rows, and that forward also judges the
iterate it was run on (no separate success forward). With ``early_stop`` (the default, for
"success on the victim") a row that turns adversarial is recorded (first successful iterate)
and dropped from the batch, so finished samples cost nothing. Without it (full budget, as ART
and torchattacks run: for transfer, defenses and every "at budget eps" figure) every row runs
all steps and keeps its *last* successful iterate, so the mask is the same as with early
stopping and only the adversarial differs. The final iterate is the only one no step's forward
has seen: one no-grad forward judges it, on just the rows no earlier forward found
adversarial (they return it, successful or not). Cost per sample: ``steps``
forward+backward passes, plus one forward only where no iterate before the last succeeded.

``margins`` (optional, length N) receives each row's ``criterion.margin`` of the returned
iterate, taken from the forward that judged it (no extra pass): the minimal-epsilon search
interpolates between probes with it.

Under a low-precision autocast (``[run] precision = "bf16"``) the steps run in bfloat16, but
with early stopping a row only stops once a float32 forward confirms its iterate (a bfloat16
verdict near the boundary is unreliable), and the final iterate is always judged in float32:
every success and margin the loop reports with early stopping is a float32 one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from facerobust.attacks.base import Tally, forward32, forward_with_grad, low_precision
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
    n, dev = x.shape[0], x.device
    threat, direction = plan.threat, plan.direction
    gidx = index if index is not None else torch.arange(n, device=dev)
    aa = threat.clip(x, x + plan.start, eps) if plan.start.any() else x.clone()
    found = Found(torch.empty_like(x),  # every row is written: at a success or after the loop
                  torch.zeros(n, dtype=torch.bool, device=dev), margins)
    result, success = found.result, found.success
    act = torch.arange(n, device=dev)
    xa, ea, crit = x, eps, criterion
    sa = plan.stepsize.to(dev, x.dtype)
    state: torch.Tensor | None = None
    confirm = plan.early_stop and low_precision(dev)
    for _ in range(plan.steps):
        out, grad = forward_with_grad(model, aa, crit)
        if tally is not None:
            tally.add(gidx[act])
        hit = crit.is_adversarial(out)
        if confirm and hit.any():
            hit, out = _confirmed(model, aa, crit, hit, out,
                                  None if tally is None else (tally, gidx[act]))
        if hit.any():  # the forward judged the iterate it ran on: keep it where adversarial
            rows = act[hit]
            result[rows] = aa[hit]
            success[rows] = True
            if margins is not None:
                margins[rows] = crit.margin(out)[hit]
            if plan.early_stop:
                keep = (~hit).nonzero()[:, 0]
                if len(keep) == 0:
                    return result, success
                act, xa, ea, aa, grad, sa = (t[keep] for t in (act, xa, ea, aa, grad, sa))
                crit = crit.subset(keep)
                state = None if state is None else state[keep]
        d, state = direction(grad, state)
        aa = threat.step(xa, aa, sa, d, ea)
    _judge_last(model, aa, crit, act, found, None if tally is None else (tally, gidx[act]))
    return result, success


def _confirmed(model: nn.Module, aa: torch.Tensor, crit: Criterion, hit: torch.Tensor,
               out: torch.Tensor, counted: tuple[Tally, torch.Tensor] | None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``hit`` and ``out`` with the rows a low-precision forward called adversarial judged
    again by a float32 forward (charged to ``counted``'s tally and global indices)."""
    idx = hit.nonzero()[:, 0]
    sub = crit.subset(idx)
    out32 = forward32(model, aa[idx], sub)
    if counted is not None:
        counted[0].add(counted[1][idx])
    out, hit = out.float(), hit.clone()
    out[idx] = out32
    hit[idx] = sub.is_adversarial(out32)
    return hit, out


@dataclass(frozen=True)
class Found:
    """Per sample: the adversarial returned, whether it succeeded, and (when asked) its
    margin; filled in as iterates succeed and, for the rest, from the final iterate."""

    result: torch.Tensor
    success: torch.Tensor
    margins: torch.Tensor | None


def _judge_last(model: nn.Module, aa: torch.Tensor, crit: Criterion, act: torch.Tensor,
                found: Found, counted: tuple[Tally, torch.Tensor] | None) -> None:
    """One no-grad float32 forward on the final iterate of the rows (global ``act``) that no
    earlier iterate made adversarial; they return it with its success (and margin).
    ``counted``: the tally and the global indices of ``act`` to charge the pass to."""
    todo = (~found.success[act]).nonzero()[:, 0]
    if len(todo) == 0:
        return
    ids = None if counted is None else counted[1]
    if len(todo) < len(act):
        aa, crit, act = aa[todo], crit.subset(todo), act[todo]
        ids = None if ids is None else ids[todo]
    out = forward32(model, aa, crit)  # float32 also inside a bfloat16 autocast
    if counted is not None and ids is not None:
        counted[0].add(ids)  # ids is None exactly when counted is
    found.result[act] = aa
    found.success[act] = crit.is_adversarial(out)
    if found.margins is not None:
        found.margins[act] = crit.margin(out)
