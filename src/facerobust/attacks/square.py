"""Square Attack: score-based black-box attack (Linf and L2).

Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient black-box
adversarial attack via random search", ECCV 2020. Only model outputs are used (no gradients):
random square-shaped updates are accepted when they increase the criterion's margin. The
square side shrinks on the paper's schedule. Linf follows the paper (vertical-stripe init,
squares set to +-eps per channel). L2 is a simplified variant: a pseudo-Gaussian bump with a
random sign per channel is added in the square and the perturbation is renormalised onto the
eps-sphere (instead of the paper's two-window mass transfer). Queries are counted per sample,
including the clean check, and never exceed ``max_queries``; successful samples stop.

>>> from facerobust.attacks import SquareAttack, Dodging
>>> result = SquareAttack("linf", max_queries=1000)(
...     net, probes, Dodging.for_model(net, refs), epsilons=[8/255],
...     generator=torch.Generator().manual_seed(0))                       # doctest: +SKIP
>>> result.queries.float().mean()                                         # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from facerobust.attacks.base import (
    AttackOptions,
    FixedEpsilonAttack,
    Tally,
    check_int,
    check_positive,
    forward,
)
from facerobust.attacks.criteria import Criterion
from facerobust.attacks.threat import L2, L2Ball, LinfBall, Threat, supported

_SCHEDULE = ((10, 2), (50, 4), (200, 8), (500, 16), (1000, 32), (2000, 64), (4000, 128),
             (6000, 256), (8000, 512))


def _p_at(p_init: float, it: int, max_queries: int) -> float:
    it = int(it / max_queries * 10000)
    div = 1
    for bound, d in _SCHEDULE:
        if it > bound:
            div = d
    return p_init / div


def _signs(shape: tuple[int, ...], g: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    return (torch.randint(0, 2, shape, generator=g) * 2 - 1).to(like.device, like.dtype)


def _bump(s: int, like: torch.Tensor) -> torch.Tensor:
    """An (s, s) pseudo-Gaussian of unit L2 norm."""
    i = torch.arange(s, device=like.device, dtype=like.dtype)
    g = 1.0 / ((i - (s - 1) / 2).abs() + 1)
    b = g[:, None] * g[None, :]
    return b / b.norm()


class _LinfSquares:
    """The paper's Linf geometry: stripes of +-eps, squares set to +-eps per channel."""

    p_init = 0.05

    def init(self, e: torch.Tensor, stripes: torch.Tensor) -> torch.Tensor:
        return e * stripes

    def candidate(self, best: torch.Tensor, e: torch.Tensor, signs: torch.Tensor,
                  mask: torch.Tensor, s: int) -> torch.Tensor:
        return torch.where(mask, e * signs, best)


class _L2Squares:
    """Simplified L2 geometry: a signed bump in the square, renormalised onto the sphere."""

    p_init = 0.1

    def init(self, e: torch.Tensor, stripes: torch.Tensor) -> torch.Tensor:
        return e * stripes / math.sqrt(stripes[0].numel())

    def candidate(self, best: torch.Tensor, e: torch.Tensor, signs: torch.Tensor,
                  mask: torch.Tensor, s: int) -> torch.Tensor:
        n, _, h, w = best.shape
        bump = torch.zeros(n, 1, h, w, device=best.device, dtype=best.dtype)
        bump[mask.expand_as(bump)] = _bump(s, best).flatten().repeat(n)
        cand = best + e * signs * bump
        return L2.project(cand / (cand.flatten(1).norm(dim=1).view(-1, 1, 1, 1) + 1e-12) * e,
                          e.flatten())


_GEOMETRY: dict[type[Threat], _LinfSquares | _L2Squares] = {
    LinfBall: _LinfSquares(), L2Ball: _L2Squares()}


@dataclass(frozen=True)
class SquareOptions(AttackOptions):
    """At most ``max_queries`` per sample; initial square fraction ``p_init`` (None: the
    threat's default, 0.05 Linf / 0.1 L2)."""

    max_queries: int = 1000
    p_init: float | None = None

    def __post_init__(self) -> None:
        check_int("max_queries", self.max_queries, least=2)
        if self.p_init is not None:
            check_positive("p_init", self.p_init)


class SquareAttack(FixedEpsilonAttack):
    """Random-search black-box attack on the criterion's margin."""

    Options = SquareOptions
    options: SquareOptions
    black_box = True

    def __init__(self, threat: Threat | str | None = None,
                 options: AttackOptions | None = None, **fields: Any) -> None:
        super().__init__(threat, options, **fields)
        self._geometry = supported(self.threat, _GEOMETRY, "square")

    @property
    def p_init(self) -> float:
        p = self.options.p_init
        return float(self._geometry.p_init if p is None else p)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "p_init": self.p_init}

    def _window(
        self, n: int, s: int, h: int, w: int, g: torch.Generator | None, like: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r = torch.randint(0, h - s + 1, (n,), generator=g).to(like.device)
        c = torch.randint(0, w - s + 1, (n,), generator=g).to(like.device)
        rows = torch.arange(h, device=like.device)
        cols = torch.arange(w, device=like.device)
        mr = (rows[None] >= r[:, None]) & (rows[None] < r[:, None] + s)
        mc = (cols[None] >= c[:, None]) & (cols[None] < c[:, None] + s)
        return (mr[:, :, None] & mc[:, None, :])[:, None], r, c

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
        n, ch, h, w = x.shape
        geo, budget = self._geometry, self.options.max_queries
        tally = tally if tally is not None else Tally(n, x.device)
        gidx = index if index is not None else torch.arange(n, device=x.device)
        e = eps.view(-1, 1, 1, 1).to(x.dtype)
        used = torch.zeros(n, dtype=torch.long, device=x.device)
        margin = criterion.margin(forward(model, x, criterion))
        used += 1
        best = torch.zeros_like(x)
        stripes = _signs((n, ch, 1, w), generator, x).expand(n, ch, h, w)
        init = geo.init(e, stripes)
        todo = (margin <= 0).nonzero()[:, 0]
        if len(todo):
            cand = (x[todo] + init[todo]).clamp(0, 1) - x[todo]
            sub = criterion.subset(todo)
            m_new = sub.margin(forward(model, x[todo] + cand, sub))
            used[todo] += 1
            best[todo] = cand
            margin[todo] = m_new
        for it in range(budget - 2):
            act = ((margin <= 0) & (used < budget)).nonzero()[:, 0]
            if len(act) == 0:
                break
            p = _p_at(self.p_init, it, budget)
            s = max(min(int(round(math.sqrt(p * h * w))), h - 1), 1)
            xa, ba, ea = x[act], best[act], e[act]
            mask, _, _ = self._window(len(act), s, h, w, generator, x)
            signs = _signs((len(act), ch, 1, 1), generator, x)
            cand = geo.candidate(ba, ea, signs, mask, s)
            cand = (xa + cand).clamp(0, 1) - xa
            m_new = criterion.subset(act).margin(forward(model, xa + cand, criterion.subset(act)))
            used[act] += 1
            better = m_new > margin[act]
            idx = act[better]
            best[idx] = cand[better]
            margin[idx] = m_new[better]
        tally.queries.index_add_(0, gidx, used)
        return (x + best).clamp(0, 1), margin > 0
