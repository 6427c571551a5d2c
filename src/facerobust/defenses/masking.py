"""Gradient-masking checks, in the spirit of AutoAttack's (Croce & Hein, ICML 2020) and of
Carlini et al., *On Evaluating Adversarial Robustness* (2019).

Each check is a small function over gradients, outputs or attack results, so it can be reused
on any model; :func:`masking_flags` gathers them into one JSON-serialisable
:class:`MaskingFlags`. A raised flag means "the robustness number is probably not real".

* ``zero_gradients``: most input-gradient entries are exactly zero (or missing) -- e.g. JPEG,
  rounding, argmax-like outputs.
* ``random_outputs``: the same input twice gives different outputs -- needs EOT.
* ``blackbox_beats_whitebox``: a black-box attack succeeds more often than the white-box one
  at some epsilon -- the white-box gradient is useless.
* ``success_not_rising``: success falls as epsilon grows, or stays flat below 100% over a
  range where epsilon at least doubles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

ZERO_GRAD_LIMIT = 0.5
RANDOM_TOL = 1e-5
SUCCESS_TOL = 0.05


@dataclass
class MaskingFlags:
    """Masking statistics and flags (``None`` = the check was not run)."""

    zero_grad_fraction: float
    zero_gradients: bool
    output_variation: float
    random_outputs: bool
    blackbox_beats_whitebox: bool | None = None
    success_not_rising: bool | None = None

    @property
    def any(self) -> bool:
        return any(bool(v) for v in (self.zero_gradients, self.random_outputs,
                                     self.blackbox_beats_whitebox, self.success_not_rising))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["any"] = self.any
        return out


def zero_gradient_fraction(model: nn.Module, x: torch.Tensor,
                           loss_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> float:
    """Fraction of input-gradient entries that are exactly zero (1.0 when autograd gives no
    gradient at all). ``loss_fn`` maps outputs to a per-sample loss (default: sum of
    outputs; pass an attack criterion's ``loss`` for the attack's real objective)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = model(x)
        loss = loss_fn(out) if loss_fn is not None else out.reshape(len(x), -1).sum(1)
        if not loss.requires_grad:
            return 1.0
        (grad,) = torch.autograd.grad(loss.sum(), x, allow_unused=True)
    if grad is None:
        return 1.0
    return float((grad == 0).float().mean().item())


@torch.no_grad()
def output_variation(model: nn.Module, x: torch.Tensor) -> float:
    """Largest difference between two forward passes on the same input, relative to the
    output's scale (0 for a deterministic model)."""
    a, b = model(x), model(x)
    scale = a.abs().max().clamp_min(1e-12)
    return float(((a - b).abs().max() / scale).item())


def _by_eps(success: Mapping[float, float]) -> list[tuple[float, float]]:
    return sorted((float(e), float(s)) for e, s in success.items())


def success_not_rising(success: Mapping[float, float], *, tol: float = SUCCESS_TOL) -> bool:
    """True when success drops by more than ``tol`` as epsilon grows, or stays flat (within
    ``tol``) and below ``1 - tol`` while epsilon at least doubles. Needs >= 2 epsilons."""
    rows = _by_eps(success)
    if len(rows) < 2:
        return False
    best = rows[0][1]
    for _, s in rows[1:]:
        if s < best - tol:
            return True
        best = max(best, s)
    (e0, s0), (e1, s1) = rows[0], rows[-1]
    return e0 > 0 and e1 >= 2 * e0 and s1 <= s0 + tol and s1 < 1 - tol


def blackbox_beats_whitebox(whitebox: Mapping[float, float], blackbox: Mapping[float, float],
                            *, tol: float = SUCCESS_TOL) -> bool:
    """True when, at some epsilon run by both, black-box success exceeds white-box by > tol."""
    white = dict(_by_eps(whitebox))
    return any(e in white and s > white[e] + tol for e, s in _by_eps(blackbox))


def masking_flags(model: nn.Module, x: torch.Tensor, *,
                  loss_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  whitebox: Mapping[float, float] | None = None,
                  blackbox: Mapping[float, float] | None = None) -> MaskingFlags:
    """Run every check on ``model`` (the model as a naive attacker sees it, i.e. with plain
    autograd gradients) and, where given, on white-/black-box success-by-epsilon tables."""
    frac = zero_gradient_fraction(model, x, loss_fn)
    var = output_variation(model, x)
    return MaskingFlags(
        zero_grad_fraction=frac,
        zero_gradients=frac >= ZERO_GRAD_LIMIT,
        output_variation=var,
        random_outputs=var > RANDOM_TOL,
        blackbox_beats_whitebox=(None if whitebox is None or blackbox is None
                                 else blackbox_beats_whitebox(whitebox, blackbox)),
        success_not_rising=None if whitebox is None else success_not_rising(whitebox),
    )
