"""TRADES on embeddings (Zhang et al., ICML 2019, adapted to a verification descriptor): the
``loss="trades"`` option of :func:`facerobust.defenses.training.adversarial_finetune`.

Loss on a batch ``x`` (``f`` the model being tuned, ``f0`` the frozen original):

    keep * |f(x) - f0(x)|^2 / thr^2  +  beta * |f(x_adv) - target|^2 / thr^2

The first term keeps clean descriptors where the original put them, so a gallery enrolled
with the original and its operating threshold keep working (clean accuracy and impostor
rejection); the second pulls the adversarial descriptor back to ``target``: ``f(x)`` (TRADES)
or ``f0(x)`` (``trades_target="teacher"``). ``x_adv`` comes from :func:`embedding_pgd`, the
inner maximisation: PGD steps in the Linf ball maximising ``|f(x') - f(x)|`` (no success
criterion, unlike the verification attacks, so every step runs), optionally under a
bfloat16 autocast (half the cost on CPUs with AVX512-BF16; the loss itself stays float32).

>>> x_adv = embedding_pgd(net, x, eps=2/255, steps=3, generator=g)           # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from facerobust.attacks.base import frozen
from facerobust.models.base import Metric

TradesTarget = Literal["clean", "teacher"]


def embedding_pgd(model: nn.Module, x: torch.Tensor, *, eps: float, steps: int,
                  generator: torch.Generator, bf16: bool = False,
                  rel_stepsize: float | None = None) -> torch.Tensor:
    """``x'`` in the Linf ``eps``-ball around ``x`` (and [0, 1]) maximising
    ``|model(x') - model(x)|``: random start, ``steps`` sign-gradient steps of
    ``rel_stepsize * eps`` (default ``2.5 / steps``, Madry's choice)."""

    step = eps * (2.5 / steps if rel_stepsize is None else rel_stepsize)
    with frozen(model):
        with torch.no_grad():
            ref = model(x).float()
        delta = (torch.rand(x.shape, generator=generator) * 2 - 1) * eps
        adv = (x + delta).clamp(0, 1)
        for _ in range(steps):
            adv.requires_grad_(True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(adv)
            loss = (out.float() - ref).pow(2).sum()
            (grad,) = torch.autograd.grad(loss, adv)
            with torch.no_grad():
                adv = adv + step * grad.sign()
                adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    return adv.detach()


def _spread(emb: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between the distinct rows of ``emb``."""
    n = len(emb)
    return (emb[:, None] - emb[None]).pow(2).sum() / (n * (n - 1))


@dataclass(frozen=True)
class TradesTerms:
    """The loss's weights and units: ``keep`` (anchor to the original), ``beta`` (robust
    term), the model's verification ``threshold`` and ``metric``, the robust term's
    ``target`` and ``spread`` (divide it by the batch's spread relative to the original's)."""

    threshold: float
    keep: float
    beta: float
    target: TradesTarget = "clean"
    metric: Metric = "euclidean"
    spread: bool = False

    def __post_init__(self) -> None:
        if self.target not in ("clean", "teacher"):
            raise ValueError(f"trades_target must be 'clean' or 'teacher', got "
                             f"{self.target!r}")


def trades_loss(clean: torch.Tensor, adv: torch.Tensor, teacher: torch.Tensor,
                terms: TradesTerms, rows: torch.Tensor | None = None) -> torch.Tensor:
    """The loss above from the tuned model's clean descriptors, the original's (both
    ``(N, D)``) and the adversarial descriptors of ``rows`` (default: all N), in units of the
    squared threshold (a cosine model's descriptors are unit-normalised first:
    ``|a - b|^2 = 2 * cosine distance``)."""

    n_adv = len(clean) if rows is None else len(rows)
    if clean.shape != teacher.shape or adv.shape != (n_adv, *clean.shape[1:]):
        raise ValueError(f"need clean and teacher (N, D) and adv (rows, D), got clean "
                         f"{tuple(clean.shape)}, adv {tuple(adv.shape)}, teacher "
                         f"{tuple(teacher.shape)}")
    t = terms
    scale = float(t.threshold) ** 2
    if t.metric == "cosine":
        clean, adv, teacher = (F.normalize(v, dim=1) for v in (clean, adv, teacher))
        scale = 2 * float(t.threshold)
    anchor = (clean - teacher).pow(2).sum(1).mean() / scale
    goal = clean if t.target == "clean" else teacher
    goal = goal if rows is None else goal[rows]
    robust = (adv - goal).pow(2).sum(1).mean() / scale if n_adv else anchor * 0
    if t.spread and len(clean) > 1:  # shrinking every descriptor must not pay: compare with
        robust = robust * _spread(teacher).detach() / _spread(clean)  # the batch's spread
    return t.keep * anchor + t.beta * robust
