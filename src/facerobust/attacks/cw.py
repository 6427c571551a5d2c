"""Carlini & Wagner L2 attack.

Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017.
Optimises ``w`` with ``x_adv = (tanh(w) + 1) / 2`` (always inside [0, 1]) to minimise
``||x_adv - x||_2^2 + c * max(-margin(x_adv), -confidence)`` with Adam, where ``margin`` is the
criterion's margin (``Z_other - Z_label`` for classifiers, ``distance - threshold`` for dodging,
``threshold - distance`` for impersonation). A per-sample binary search over ``c``
(``binary_search_steps``) keeps the smallest successful perturbation. With ``abort_early``,
every ``steps // 10`` steps (at least every step) a sample whose loss has not improved leaves
the batch (``abort_scope="sample"``, the default: a sample's result does not depend on its batch
mates), or the whole batch stops once its summed loss has not improved (``"batch"``: Carlini's
reference rule, as torchattacks runs it). Each step's forward also judges its iterate, so no
pass is spent on success: an epsilon the found perturbation fits keeps it and its success, a
smaller one clips it to that L2 budget and re-checks just those rows.

Under a low-precision autocast (``[run] precision = "bf16"``) the steps' forward+backward run in
bfloat16, but an iterate becomes a row's best only after a float32 forward confirms it
(:class:`_Float32Check`): CW settles on the decision boundary, where bfloat16's verdict is a
coin toss. Only rows that could improve their best (smaller L2, bfloat16 margin within the
largest bfloat16/float32 margin gap seen so far) pay that forward.

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
    Minimized,
    Tally,
    check_int,
    check_positive,
    forward32,
    low_precision,
)
from facerobust.attacks.criteria import Criterion
from facerobust.attacks.threat import L2, L2Ball, Threat

ABORT_SCOPES = ("sample", "batch")


@dataclass(frozen=True)
class CWOptions(AttackOptions):
    """``binary_search_steps`` rounds over the constant c (from ``initial_const``), each of
    ``steps`` Adam steps at ``lr``; ``confidence`` margin; ``abort_early`` on a plateau, per
    sample or for the whole batch (``abort_scope``)."""

    binary_search_steps: int = 9
    steps: int = 100
    lr: float = 0.01
    initial_const: float = 1e-3
    confidence: float = 0.0
    abort_early: bool = True
    abort_scope: str = "sample"

    def __post_init__(self) -> None:
        if self.abort_scope not in ABORT_SCOPES:
            raise ValueError(f"abort_scope must be one of {', '.join(ABORT_SCOPES)}, got "
                             f"{self.abort_scope!r}")
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
    float32_verdicts: ClassVar[bool] = True

    def minimize(
        self,
        model: nn.Module,
        x: torch.Tensor,
        criterion: Criterion,
        *,
        generator: torch.Generator | None,
        tally: Tally,
    ) -> Minimized:
        n, dev, o = x.shape[0], x.device, self.options
        w0 = torch.atanh((2 * x - 1).clamp(-1 + 1e-6, 1 - 1e-6))
        const = torch.full((n,), o.initial_const, device=dev, dtype=x.dtype)
        lo = torch.zeros_like(const)
        hi = torch.full_like(const, math.inf)
        best = _Best(x.clone(), torch.full_like(const, math.inf))
        check = _Float32Check.if_needed(x.device, o.confidence)
        for _ in range(o.binary_search_steps):
            hit_c = self._descend(model, x, criterion, w0, const, (best, check), tally)
            # per-sample binary search on c
            hi = torch.where(hit_c, torch.minimum(hi, const), hi)
            lo = torch.where(hit_c, lo, torch.maximum(lo, const))
            const = torch.where(torch.isinf(hi), const * 10, (lo + hi) / 2)
        # a finite best L2 means the forward that found the adversarial judged it so
        return Minimized(best.adv, torch.isfinite(best.l2))

    def _descend(
        self, model: nn.Module, x: torch.Tensor, criterion: Criterion, w0: torch.Tensor,
        const: torch.Tensor, found: tuple[_Best, _Float32Check | None], tally: Tally,
    ) -> torch.Tensor:
        """One round of Adam steps at the constants ``const``; updates the best in place and
        returns which rows any step made adversarial (with the confidence margin)."""
        o, (best, check) = self.options, found
        hit_c = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        rows = _Rows(torch.arange(x.shape[0], device=x.device), w0.clone(), x, const, criterion)
        prev = torch.full_like(const, math.inf)
        prev_total = math.inf
        check_every = max(o.steps // 10, 1)
        for it in range(1, o.steps + 1):
            adv, out, margin, l2, loss, grad = rows.loss_and_grad(model, o.confidence)
            tally.add(rows.act)
            with torch.no_grad():
                ok = rows.crit.is_adversarial(out) & (margin >= o.confidence)
                if check is not None:
                    ok = check(model, rows, adv, ok, margin, l2 < best.l2[rows.act], tally)
                best.update(rows.act, ok, l2, adv)
                hit_c[rows.act[ok]] = True
                _adam(rows.w, grad, rows.m, rows.v, it, o.lr)
            if not o.abort_early:
                continue
            if o.abort_scope == "batch":  # Carlini's rule: steps 0, k, 2k, ... (0-based)
                if (it - 1) % check_every == 0:
                    if float(loss.sum()) > prev_total * 0.9999:
                        break
                    prev_total = float(loss.sum())
            elif it % check_every == 0:  # per sample: rows that stopped improving leave
                keep = (loss <= prev * 0.9999).nonzero()[:, 0]
                if len(keep) == 0:
                    break
                if len(keep) < len(rows.act):
                    rows = rows.subset(keep)
                prev = loss[keep]
        return hit_c


class _Rows:
    """The active rows of one round: indices, ``w`` (a leaf), Adam moments, images, constants."""

    def __init__(self, act: torch.Tensor, w: torch.Tensor, x: torch.Tensor, c: torch.Tensor,
                 crit: Criterion, moments: tuple[torch.Tensor, torch.Tensor] | None = None
                 ) -> None:
        self.act, self.w, self.x, self.c, self.crit = act, w.requires_grad_(True), x, c, crit
        self.m, self.v = moments or (torch.zeros_like(w), torch.zeros_like(w))

    def subset(self, keep: torch.Tensor) -> _Rows:
        with torch.no_grad():
            return _Rows(self.act[keep], self.w[keep], self.x[keep], self.c[keep],
                         self.crit.subset(keep), (self.m[keep], self.v[keep]))

    def loss_and_grad(self, model: nn.Module, confidence: float) -> tuple[torch.Tensor, ...]:
        """One forward+backward: the image, outputs, margin, squared L2, loss, d loss / d w."""
        with torch.enable_grad():
            adv = torch.tanh(self.w).add(1).mul(0.5)
            out = model(adv)
            self.crit.check(out)
            margin = self.crit.margin(out)
            l2 = (adv - self.x).pow(2).flatten(1).sum(dim=1)
            loss = l2 + self.c * torch.clamp(-margin, min=-confidence)
            (grad,) = torch.autograd.grad(loss.sum(), self.w)
        return adv.detach(), out.detach(), margin.detach(), l2.detach(), loss.detach(), grad


class _Float32Check:
    """Confirms bfloat16 iterates with a float32 forward before they may become a row's best.

    Rows are checked when their L2 beats their best and their bfloat16 margin is within
    ``slack`` of success; ``slack`` is twice the largest bfloat16/float32 margin gap seen so
    far (infinite until the first check, so the first step checks every improvable row).
    Unchecked rows keep the bfloat16 verdict, which only steers the search over c.
    """

    def __init__(self, confidence: float) -> None:
        self.confidence, self.slack = confidence, math.inf

    @classmethod
    def if_needed(cls, device: torch.device, confidence: float) -> _Float32Check | None:
        return cls(confidence) if low_precision(device) else None

    def __call__(self, model: nn.Module, rows: _Rows, adv: torch.Tensor, ok: torch.Tensor,
                 margin: torch.Tensor, improves: torch.Tensor, tally: Tally) -> torch.Tensor:
        idx = (improves & (margin >= self.confidence - self.slack)).nonzero()[:, 0]
        if len(idx) == 0:
            return ok
        crit = rows.crit.subset(idx)
        out = forward32(model, adv[idx], crit)
        tally.add(rows.act[idx])
        margin32 = crit.margin(out)
        gap = float((margin[idx].float() - margin32).abs().max())
        self.slack = 2 * gap if math.isinf(self.slack) else max(self.slack, 2 * gap)
        ok = ok.clone()
        ok[idx] = crit.is_adversarial(out) & (margin32 >= self.confidence)
        return ok


class _Best:
    """Each row's smallest successful adversarial so far and its squared L2 (inf: none)."""

    def __init__(self, adv: torch.Tensor, l2: torch.Tensor) -> None:
        self.adv, self.l2 = adv, l2

    def update(self, act: torch.Tensor, ok: torch.Tensor, l2: torch.Tensor,
               adv: torch.Tensor) -> None:
        better = ok & (l2 < self.l2[act])
        if better.any():
            idx = act[better]
            self.l2[idx] = l2[better]
            self.adv[idx] = adv[better]


def _adam(w: torch.Tensor, grad: torch.Tensor, m: torch.Tensor, v: torch.Tensor, it: int,
          lr: float, b1: float = 0.9, b2: float = 0.999) -> None:
    """One Adam step on ``w`` in place (moments ``m``/``v`` too): no full-size temporaries
    beyond the denominator."""
    m.mul_(b1).add_(grad, alpha=1 - b1)
    v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
    denom = v.div(1 - b2**it).sqrt_().add_(1e-8)
    w.addcdiv_(m, denom, value=-lr / (1 - b1**it))
