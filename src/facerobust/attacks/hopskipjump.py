"""HopSkipJump: decision-based black-box attack (L2 and Linf).

Chen, Jordan & Wainwright, "HopSkipJumpAttack: A Query-Efficient Decision-Based Attack",
IEEE S&P 2020. Sees only accept/reject (``criterion.is_adversarial``). Starts from an
adversarial point (``starting_points``, e.g. a photo of the victim for impersonation, or
uniform noise found by random draws), then repeats: binary search to the boundary, Monte-Carlo
estimate of the boundary normal from ``num_evals`` random probes, a geometric step along it,
and binary search again. All samples run together; queries are counted per sample and a sample
stops before an iteration that could exceed ``max_queries``.

>>> from facerobust.attacks import HopSkipJump, Impersonation
>>> hsj = HopSkipJump(norm="l2", max_queries=2000, starting_points=victim_chips)
>>> result = hsj(net, probes, Impersonation.for_model(net, victims), epsilons=[math.inf],
...              generator=torch.Generator().manual_seed(0))             # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from facerobust.attacks.base import MinimizationAttack, Norm, Tally, check_norm, flat_norm
from facerobust.attacks.criteria import Criterion

_MAX_HALVINGS = 12


class HopSkipJump(MinimizationAttack):
    """Decision-based minimal-perturbation attack with a per-sample query budget."""

    black_box = True

    def __init__(
        self,
        *,
        norm: Norm = "l2",
        max_queries: int = 1000,
        initial_evals: int = 50,
        max_evals: int = 200,
        gamma: float = 1.0,
        init_attempts: int = 20,
        starting_points: torch.Tensor | None = None,
        chunk: int = 256,
    ) -> None:
        self.norm = check_norm(norm)
        ints = (("max_queries", max_queries), ("initial_evals", initial_evals),
                ("max_evals", max_evals), ("init_attempts", init_attempts), ("chunk", chunk))
        for name, v in ints:
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.max_queries = max_queries
        self.initial_evals = initial_evals
        self.max_evals = max_evals
        self.gamma = float(gamma)
        self.init_attempts = init_attempts
        self._starting_points = starting_points
        self.chunk = chunk

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
            for i in range(0, x.shape[0], self.chunk):
                outs.append(model(x[i : i + self.chunk]))
        out = torch.cat(outs)
        crit.check(out)
        tally.add(idx, times=repeat)
        return crit.is_adversarial(out)

    def _blend(self, x: torch.Tensor, adv: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        a = a.view(-1, 1, 1, 1)
        if self.norm == "l2":
            return (1 - a) * x + a * adv
        lim = a * flat_norm(adv - x, "linf").view(-1, 1, 1, 1)
        return x + torch.maximum(torch.minimum(adv - x, lim), -lim)

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
            ok = self._decide(model, self._blend(x, adv, mid), crit, idx, tally)
            hi = torch.where(ok, mid, hi)
            lo = torch.where(ok, lo, mid)
        return self._blend(x, adv, hi), steps

    def _bs_steps(self, x: torch.Tensor, theta: float) -> int:
        longest = math.sqrt(x[0].numel()) if self.norm == "l2" else 1.0
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
        for _ in range(self.init_attempts):
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
    ) -> torch.Tensor:
        dev = x.device
        d = x[0].numel()
        theta = self.gamma / (d ** 1.5 if self.norm == "l2" else d**2)
        adv, found, clean = self._start(model, x, criterion, tally, generator)
        result = torch.where(found.view(-1, 1, 1, 1), adv, x)
        act = (found & ~clean).nonzero()[:, 0]
        bs_cost = self._bs_steps(x, theta)
        if len(act):
            # first projection onto the boundary, only if the budget allows it
            act = act[tally.queries[act] + bs_cost <= self.max_queries]
        if len(act):
            result[act], _ = self._boundary(model, x[act], result[act], criterion.subset(act), act,
                                            tally, theta)
        t = 0
        while len(act):
            t += 1
            evals = int(min(self.initial_evals * math.sqrt(t), self.max_evals))
            need = evals + _MAX_HALVINGS + bs_cost
            act = act[tally.queries[act] + need <= self.max_queries]
            if len(act) == 0:
                break
            xa, ba, crit = x[act], result[act], criterion.subset(act)
            dist = flat_norm(ba - xa, self.norm)
            delta = (math.sqrt(d) * theta if self.norm == "l2" else d * theta) * dist
            if t == 1:
                delta = torch.full_like(dist, 0.1)
            grad = self._estimate(model, ba, crit, act, tally, delta, evals, generator)
            step_dir = grad.sign() if self.norm == "linf" else grad / (
                flat_norm(grad, "l2").view(-1, 1, 1, 1) + 1e-12)
            size = flat_norm(ba - xa, "l2") / math.sqrt(t)
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
        return torch.where(walked, (x + 1.001 * (result - x)).clamp(0, 1), result)

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
        if self.norm == "l2":
            u = torch.randn(shape, generator=generator, dtype=xb.dtype)
        else:
            u = torch.rand(shape, generator=generator, dtype=xb.dtype) * 2 - 1
        u = u.to(xb.device)
        u = u / u.flatten(2).norm(dim=2).view(n, evals, *([1] * (xb.ndim - 1)))
        probes = (xb[:, None] + delta.view(n, 1, 1, 1, 1) * u).clamp(0, 1)
        u = (probes - xb[:, None]) / delta.view(n, 1, 1, 1, 1)
        ok = self._decide(model, probes.flatten(0, 1), crit, act, tally, repeat=evals)
        f = ok.view(n, evals).to(xb.dtype) * 2 - 1
        mean = f.mean(dim=1, keepdim=True)
        centred = torch.where((mean.abs() == 1), f, f - mean)
        return (centred.view(n, evals, *([1] * (xb.ndim - 1))) * u).mean(dim=1)
