"""HopSkipJump: decision-based black-box attack (L2 and Linf).

Chen, Jordan & Wainwright, "HopSkipJumpAttack: A Query-Efficient Decision-Based Attack",
IEEE S&P 2020. Sees only accept/reject (``criterion.is_adversarial``). Starts from an
adversarial point (``starting_points``, e.g. a photo of the victim for impersonation, or
uniform noise found by random draws), then repeats: binary search to the boundary, Monte-Carlo
estimate of the boundary normal from ``num_evals`` random probes, a geometric step along it,
and binary search again. All samples run together; queries are counted per sample and a sample
stops before an iteration that could exceed ``max_queries``.

>>> from facerobust.attacks import HopSkipJump, Impersonation
>>> hsj = HopSkipJump("l2", max_queries=2000, starting_points=victim_chips)
>>> result = hsj(net, probes, Impersonation.for_model(net, victims), epsilons=[math.inf],
...              generator=torch.Generator().manual_seed(0))             # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from facerobust.attacks.base import (
    AttackOptions,
    MinimizationAttack,
    Minimized,
    Tally,
    check_int,
)
from facerobust.attacks.criteria import Criterion
from facerobust.attacks.threat import L2, L2Ball, LinfBall, Threat, supported

_MAX_HALVINGS = 12


class _L2Geometry:
    """The paper's L2 constants: theta = gamma / d^1.5, Gaussian probes, linear blends."""

    def theta(self, gamma: float, d: int) -> float:
        return gamma / d**1.5

    def longest(self, d: int) -> float:
        return math.sqrt(d)

    def delta_scale(self, d: int, theta: float) -> float:
        return math.sqrt(d) * theta

    def probes(self, shape: tuple[int, ...], generator: torch.Generator | None,
               dtype: torch.dtype) -> torch.Tensor:
        return torch.randn(shape, generator=generator, dtype=dtype)

    def blend(self, x: torch.Tensor, adv: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        a = a.view(-1, 1, 1, 1)
        return (1 - a) * x + a * adv


class _LinfGeometry:
    """The paper's Linf constants: theta = gamma / d^2, uniform probes, clipped blends."""

    def theta(self, gamma: float, d: int) -> float:
        return gamma / d**2

    def longest(self, d: int) -> float:
        return 1.0

    def delta_scale(self, d: int, theta: float) -> float:
        return d * theta

    def probes(self, shape: tuple[int, ...], generator: torch.Generator | None,
               dtype: torch.dtype) -> torch.Tensor:
        return torch.rand(shape, generator=generator, dtype=dtype) * 2 - 1

    def blend(self, x: torch.Tensor, adv: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        a = a.view(-1, 1, 1, 1)
        lim = a * (adv - x).flatten(1).abs().amax(dim=1).view(-1, 1, 1, 1)
        return x + torch.maximum(torch.minimum(adv - x, lim), -lim)


_GEOMETRY: dict[type[Threat], _L2Geometry | _LinfGeometry] = {
    L2Ball: _L2Geometry(), LinfBall: _LinfGeometry()}


@dataclass(frozen=True)
class HSJOptions(AttackOptions):
    """At most ``max_queries`` per sample; gradient estimates from ``initial_evals`` growing
    to ``max_evals`` probes; step constant ``gamma``; ``init_attempts`` random starts; model
    calls in chunks of ``chunk``."""

    max_queries: int = 1000
    initial_evals: int = 50
    max_evals: int = 200
    gamma: float = 1.0
    init_attempts: int = 20
    chunk: int = 256

    def __post_init__(self) -> None:
        for name in ("max_queries", "initial_evals", "max_evals", "init_attempts", "chunk"):
            check_int(name, getattr(self, name))
        if self.gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")


class HopSkipJump(MinimizationAttack):
    """Decision-based minimal-perturbation attack with a per-sample query budget."""

    black_box = True

    Options = HSJOptions
    options: HSJOptions
    default_threat: ClassVar[Threat] = L2

    def __init__(self, threat: Threat | str | None = None,
                 options: AttackOptions | None = None, *,
                 starting_points: torch.Tensor | None = None, **fields: Any) -> None:
        """``starting_points`` (optional, shaped like the attacked batch): adversarial points
        to start from, e.g. photos of the victim for impersonation."""
        super().__init__(threat, options, **fields)
        self._geometry = supported(self.threat, _GEOMETRY, "hsj")
        self._starting_points = starting_points

    def settings(self) -> dict[str, Any]:
        s = super().settings()
        s["starting_points"] = self._starting_points is not None
        return s

    # -- decision oracle ----------------------------------------------------------------
    def _decide(
        self,
        model: nn.Module,
        x: torch.Tensor,
        crit: Criterion,
        idx: torch.Tensor,
        tally: Tally,
        repeat: int = 1,
    ) -> torch.Tensor:
        """is_adversarial for rows of ``x`` (``repeat`` probes per sample, sample-major)."""
        if repeat > 1:
            crit = crit.subset(torch.arange(len(crit), device=x.device).repeat_interleave(repeat))
        outs = []
        with torch.no_grad():
            for i in range(0, x.shape[0], self.options.chunk):
                outs.append(model(x[i : i + self.options.chunk]))
        out = torch.cat(outs)
        crit.check(out)
        tally.add(idx, times=repeat)
        return crit.is_adversarial(out)

    def _boundary(
        self,
        model: nn.Module,
        x: torch.Tensor,
        adv: torch.Tensor,
        crit: Criterion,
        idx: torch.Tensor,
        tally: Tally,
        theta: float,
    ) -> tuple[torch.Tensor, int]:
        """Binary search on the blend factor; returns points on the adversarial side."""
        lo = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        hi = torch.ones_like(lo)
        steps = self._bs_steps(x, theta)
        for _ in range(steps):
            mid = (lo + hi) / 2
            ok = self._decide(model, self._geometry.blend(x, adv, mid), crit, idx, tally)
            hi = torch.where(ok, mid, hi)
            lo = torch.where(ok, lo, mid)
        return self._geometry.blend(x, adv, hi), steps

    def _bs_steps(self, x: torch.Tensor, theta: float) -> int:
        longest = self._geometry.longest(x[0].numel())
        return min(30, int(math.ceil(math.log2(max(longest / theta, 2.0)))))

    def _start(
        self,
        model: nn.Module,
        x: torch.Tensor,
        crit: Criterion,
        tally: Tally,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        idx = torch.arange(n, device=x.device)
        adv = x.clone()
        found = self._decide(model, x, crit, idx, tally)
        clean = found.clone()
        if self._starting_points is not None:
            sp = self._starting_points.to(x.device, x.dtype)
            if sp.shape != x.shape:
                raise ValueError(
                    f"starting_points must have shape {tuple(x.shape)}, got {tuple(sp.shape)}"
                )
            todo = (~found).nonzero()[:, 0]
            ok = self._decide(model, sp[todo], crit.subset(todo), todo, tally)
            adv[todo[ok]] = sp[todo[ok]]
            found[todo[ok]] = True
        for _ in range(self.options.init_attempts):
            todo = (~found).nonzero()[:, 0]
            if len(todo) == 0:
                break
            shape = (len(todo), *x.shape[1:])
            noise = torch.rand(shape, generator=generator, dtype=x.dtype).to(x.device)
            ok = self._decide(model, noise, crit.subset(todo), todo, tally)
            adv[todo[ok]] = noise[ok]
            found[todo[ok]] = True
        return adv, found, clean

    def minimize(
        self,
        model: nn.Module,
        x: torch.Tensor,
        criterion: Criterion,
        *,
        generator: torch.Generator | None,
        tally: Tally,
    ) -> Minimized:
        dev, o, geo = x.device, self.options, self._geometry
        d = x[0].numel()
        theta = geo.theta(o.gamma, d)
        adv, found, clean = self._start(model, x, criterion, tally, generator)
        result = torch.where(found.view(-1, 1, 1, 1), adv, x)
        act = (found & ~clean).nonzero()[:, 0]
        bs_cost = self._bs_steps(x, theta)
        if len(act):
            # first projection onto the boundary, only if the budget allows it
            act = act[tally.queries[act] + bs_cost <= o.max_queries]
        if len(act):
            result[act], _ = self._boundary(model, x[act], result[act], criterion.subset(act), act,
                                            tally, theta)
        t = 0
        while len(act):
            t += 1
            evals = int(min(o.initial_evals * math.sqrt(t), o.max_evals))
            need = evals + _MAX_HALVINGS + bs_cost
            act = act[tally.queries[act] + need <= o.max_queries]
            if len(act) == 0:
                break
            xa, ba, crit = x[act], result[act], criterion.subset(act)
            dist = self.threat.norm(ba - xa)
            delta = geo.delta_scale(d, theta) * dist
            if t == 1:
                delta = torch.full_like(dist, 0.1)
            grad = self._estimate(model, ba, crit, act, tally, delta, evals, generator)
            step_dir = self.threat.direction(grad)
            size = L2.norm(ba - xa) / math.sqrt(t)
            moved = ba.clone()
            pending = torch.ones(len(act), dtype=torch.bool, device=dev)
            for _ in range(_MAX_HALVINGS):
                p = pending.nonzero()[:, 0]
                if len(p) == 0:
                    break
                cand = (ba[p] + size[p].view(-1, 1, 1, 1) * step_dir[p]).clamp(0, 1)
                ok = self._decide(model, cand, crit.subset(p), act[p], tally)
                moved[p[ok]] = cand[ok]
                pending[p[ok]] = False
                size[p[~ok]] /= 2
            result[act], _ = self._boundary(model, xa, moved, crit, act, tally, theta)
        # step 0.1% further from x: boundary points found in one batch composition can flip
        # when re-evaluated in another (float noise of ~1e-6 in the model outputs)
        walked = (found & ~clean).view(-1, 1, 1, 1)
        return Minimized(torch.where(walked, (x + 1.001 * (result - x)).clamp(0, 1), result))

    def _estimate(
        self,
        model: nn.Module,
        xb: torch.Tensor,
        crit: Criterion,
        act: torch.Tensor,
        tally: Tally,
        delta: torch.Tensor,
        evals: int,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        n = xb.shape[0]
        shape = (n, evals) + tuple(xb.shape[1:])
        u = self._geometry.probes(shape, generator, xb.dtype).to(xb.device)
        u = u / u.flatten(2).norm(dim=2).view(n, evals, *([1] * (xb.ndim - 1)))
        probes = (xb[:, None] + delta.view(n, 1, 1, 1, 1) * u).clamp(0, 1)
        u = (probes - xb[:, None]) / delta.view(n, 1, 1, 1, 1)
        ok = self._decide(model, probes.flatten(0, 1), crit, act, tally, repeat=evals)
        f = ok.view(n, evals).to(xb.dtype) * 2 - 1
        mean = f.mean(dim=1, keepdim=True)
        centred = torch.where((mean.abs() == 1), f, f - mean)
        return (centred.view(n, evals, *([1] * (xb.ndim - 1))) * u).mean(dim=1)
