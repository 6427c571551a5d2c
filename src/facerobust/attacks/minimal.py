"""Minimal-perturbation search: per sample, the smallest epsilon at which an attack succeeds.

RobFR (Yang et al., "RobFR: Benchmarking Adversarial Robustness on Face Recognition", 2020)
reports the median of this per-sample minimal budget. Their search runs the attack at 5 evenly
spaced budgets (linear phase) and then 10 bisection steps, every time on every sample for
every attack iteration (:func:`robfr_search`, kept as the baseline).

:func:`minimal_epsilon` reaches the same resolution (``max_epsilon / 5 / 2**10`` by default)
with fewer model passes (on the speed benchmark's LFW probes about half of RobFR's, at a smaller
median: ``benchmarks/attack_speed.py``):

* a DeepFool-style guess from one gradient (``-margin / ||grad||``) starts a per-sample search
  (:mod:`facerobust.attacks.bracket`): interpolation on the criterion margin (read from the
  forwards the attack already makes) until a failure is known, then batched bisection with
  per-sample intervals; samples failing at ``max_epsilon`` get ``inf``;
* by default (``warm_start=True``, PGD/BIM) each probe starts from the adversarial found at the
  interval's upper end, projected onto the smaller ball, so successful probes often cost one or
  two passes. The warm-started attack is stronger than a cold one, so the minimal budgets come
  out a few percent *lower* than the plain attack's (RobFR's search runs the cold attack):
  ``search=PLAIN_BISECTION`` (neither warm start nor interpolation) gives the plain
  attack's budgets (bisection);
* optionally (``tighten=True``) the upper end of each interval shrinks to the *actual* norm
  of the adversarial found -- a valid but different quantity (smallest perturbation found
  rather than smallest budget at which the attack succeeds), so it is off by default;
* iterative attacks stop early for samples that succeed, and samples whose interval is already
  narrow enough leave the batch.

Minimisation attacks (CW, DeepFool, HopSkipJump) need no search: the norm of their result is
the per-sample estimate.

>>> from facerobust.attacks import PGD, Dodging, minimal_epsilon
>>> res = minimal_epsilon(net, probes, Dodging.for_model(net, refs),
...                       attack=PGD("linf", steps=10), max_epsilon=16/255)  # doctest: +SKIP
>>> res.median(), res.quantiles()                                            # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from facerobust.attacks.base import (
    Attack,
    FixedEpsilonAttack,
    MinimizationAttack,
    Tally,
    check_inputs,
    check_positive,
    forward32,
    frozen,
    low_precision,
)
from facerobust.attacks.bracket import OVERSHOOT, Bracket
from facerobust.attacks.criteria import Criterion
from facerobust.attacks.pgd import PGD
from facerobust.attacks.threat import Threat


@dataclass(frozen=True)
class SearchOptions:
    """How :func:`minimal_epsilon` searches: final interval width ``tolerance`` (None:
    ``max_epsilon / 5120``), ``tighten`` to the found norm, ``warm_start`` (PGD/BIM) and
    ``interpolate`` on the criterion margin (see the module docstring)."""

    tolerance: float | None = None
    tighten: bool = False
    warm_start: bool = True
    interpolate: bool = True

    def __post_init__(self) -> None:
        if self.tolerance is not None:
            check_positive("tolerance", self.tolerance)


PLAIN_BISECTION = SearchOptions(warm_start=False, interpolate=False)


@dataclass
class MinimalEpsilonResult:
    """Per-sample minimal budgets (``inf`` where the attack failed up to ``max_epsilon``)."""

    epsilons: torch.Tensor
    adversarials: torch.Tensor
    norm: str
    max_epsilon: float
    passes: int
    method: str = "bisection"

    def success_rate(self) -> float:
        return float(torch.isfinite(self.epsilons).float().mean())

    def median(self) -> float:
        """Median over all samples (failures count as ``inf``, as in RobFR)."""
        return float(self.epsilons.double().sort().values[(len(self.epsilons) - 1) // 2])

    def quantiles(self, qs: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)) -> dict[str, float]:
        e = self.epsilons.double().sort().values
        n = len(e)
        return {f"q{int(q * 100)}": float(e[min(n - 1, int(math.floor(q * (n - 1))))]) for q in qs}

    def histogram(self, bins: int = 10) -> dict[str, list[float]]:
        finite = self.epsilons[torch.isfinite(self.epsilons)].double()
        edges = torch.linspace(0, self.max_epsilon, bins + 1, dtype=torch.float64)
        counts = torch.histc(finite, bins=bins, min=0, max=self.max_epsilon) if len(finite) else \
            torch.zeros(bins, dtype=torch.float64)
        return {"edges": edges.tolist(), "counts": counts.tolist()}

    def to_dict(self) -> dict[str, Any]:
        fin = [float(v) if math.isfinite(v) else None for v in self.epsilons.tolist()]
        return {
            "method": self.method, "norm": self.norm, "max_epsilon": self.max_epsilon,
            "median": self.median(), "quantiles": self.quantiles(), "passes": self.passes,
            "success_rate": self.success_rate(), "histogram": self.histogram(), "per_sample": fin,
        }


def _judged(model: nn.Module, adv: torch.Tensor, criterion: Criterion,
            known: torch.Tensor | None, tally: Tally) -> torch.Tensor:
    """Success of a minimisation attack's adversarials: a forward only on the rows it has not
    already judged adversarial (counted)."""
    ok = torch.zeros(len(adv), dtype=torch.bool, device=adv.device) if known is None \
        else known.clone()
    todo = (~ok).nonzero()[:, 0]
    if len(todo):
        sub = criterion if len(todo) == len(ok) else criterion.subset(todo)
        ok[todo] = sub.is_adversarial(forward32(model, adv[todo], sub))
        tally.add(todo)
    return ok


def _setup(attack: Attack, x: torch.Tensor, criterion: Criterion, max_epsilon: float) -> None:
    if not isinstance(attack, Attack):
        raise ValueError(f"attack must be a facerobust Attack, got {type(attack).__name__}")
    check_inputs(x, criterion)
    check_positive("max_epsilon", max_epsilon)
    if math.isinf(max_epsilon):
        raise ValueError("max_epsilon must be finite")


def _linear_guess(model: nn.Module, x: torch.Tensor, criterion: Criterion, threat: Threat,
                  tally: Tally) -> tuple[torch.Tensor, torch.Tensor]:
    """The clean margin and a DeepFool-style first guess of each minimal budget from one
    gradient of it: ``-margin / ||grad||_dual`` (1 pass per sample)."""
    xr = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = model(xr)
        criterion.check(out)
        margin = criterion.margin(out)
        (grad,) = torch.autograd.grad(margin.sum(), xr)
    tally.add(None)
    dual = threat.dual_norm(grad)
    margin = margin.detach()
    if low_precision(x.device):  # the bracket starts from the float32 clean margin
        margin = criterion.margin(forward32(model, x, criterion))
        tally.add(None)
    return margin, (-margin).clamp(min=0) / (dual + 1e-12)


def minimal_epsilon(
    model: nn.Module,
    x: torch.Tensor,
    criterion: Criterion,
    *,
    attack: Attack,
    max_epsilon: float,
    search: SearchOptions = SearchOptions(),
    generator: torch.Generator | None = None,
) -> MinimalEpsilonResult:
    """Smallest successful budget per sample, by a batched per-sample bracket search
    (``warm_start`` and ``interpolate`` on by default; :data:`PLAIN_BISECTION` turns both off).

    ``search.tolerance`` is the final interval width (default ``max_epsilon / 5120``, the
    resolution of a linear(5) + binary(10) search). The reported value is the upper end, where
    an adversarial was actually found (``adversarials`` holds it).
    """
    _setup(attack, x, criterion, max_epsilon)
    tol = max_epsilon / 5120 if search.tolerance is None else search.tolerance
    check_positive("tolerance", tol)
    threat = attack.threat
    x = x.detach()
    n, dev = x.shape[0], x.device
    tally = Tally(n, dev)
    with frozen(model):
        if isinstance(attack, MinimizationAttack):
            adv, known = attack.minimize(model, x, criterion, generator=generator, tally=tally)
            ok = _judged(model, adv, criterion, known, tally)
            size = threat.norm(adv - x)
            eps = torch.where(ok & (size <= max_epsilon), size, torch.full_like(size, math.inf))
            return MinimalEpsilonResult(eps.cpu(), adv, attack.norm, max_epsilon, tally.passes,
                                        method="minimisation")
        if not isinstance(attack, FixedEpsilonAttack):
            raise ValueError(f"{type(attack).__name__} is neither fixed-epsilon nor minimising")
        warm = search.warm_start and isinstance(attack, PGD)
        uses = attack.reports_margins and search.interpolate
        margin0, guess = _linear_guess(model, x, criterion, threat, tally)
        guess = (guess * (OVERSHOOT if warm and uses else 1.0)).clamp(tol, max_epsilon)
        state = Bracket.start(margin0, uses)
        best = x.clone()
        while len(act := state.active(tol)):
            probe = state.next_probe(act, guess, max_epsilon, tol)
            margin = torch.zeros_like(probe) if uses else None
            kw: dict[str, Any] = {"margins": margin} if uses else {}
            sub = criterion.subset(act)
            if warm and isinstance(attack, PGD):
                # start from the adversarial found at the upper end (x where none yet)
                a, ok = attack.perturb_from(model, x[act], sub, probe, best[act], tally=tally,
                                            index=act, margins=margin)
            else:
                a, ok = attack.perturb(model, x[act], sub, probe, generator=generator,
                                       tally=tally, index=act, **kw)
            value = torch.minimum(threat.norm(a - x[act]), probe) if search.tighten \
                else probe
            best[act[ok]] = a[ok]
            state.update(act, probe, ok, margin, value, max_epsilon, tol)
    return MinimalEpsilonResult(state.hi.cpu(), best, attack.norm, max_epsilon,
                                tally.passes)


def robfr_search(
    model: nn.Module,
    x: torch.Tensor,
    criterion: Criterion,
    *,
    attack: FixedEpsilonAttack,
    max_epsilon: float,
    linear_steps: int = 5,
    binary_steps: int = 10,
    generator: torch.Generator | None = None,
) -> MinimalEpsilonResult:
    """Baseline RobFR-style search: linear phase over ``linear_steps`` budgets (unfinished samples
    only), then ``binary_steps`` bisection steps on every sample found. Give it an attack with
    ``early_stop=False`` to reproduce RobFR's trajectory (their attacks always run every step);
    passes are counted as RobFR spends them: per probed sample, ``steps`` forward+backward
    passes and one forward judging the final iterate (the attack's own count if it has no
    ``steps``), whatever the attack given here saves."""
    _setup(attack, x, criterion, max_epsilon)
    x = x.detach()
    n, dev = x.shape[0], x.device
    tally = Tally(n, dev)
    steps: int | None = getattr(attack.options, "steps", None)
    own = None if steps else tally  # with steps: RobFR's count, charged per probe below
    hi = torch.full((n,), math.inf, dtype=x.dtype, device=dev)
    lo = torch.zeros_like(hi)
    best = x.clone()
    with frozen(model):
        for i in range(1, linear_steps + 1):
            act = torch.isinf(hi).nonzero()[:, 0]
            if len(act) == 0:
                break
            e = torch.full((len(act),), max_epsilon * i / linear_steps, dtype=x.dtype, device=dev)
            a, s = attack.perturb(model, x[act], criterion.subset(act), e,
                                  generator=generator, tally=own, index=act)
            if steps:
                tally.add(act, times=steps + 1)
            hi[act[s]] = e[s]
            lo[act[s]] = max_epsilon * (i - 1) / linear_steps
            best[act[s]] = a[s]
        act = torch.isfinite(hi).nonzero()[:, 0]
        for _ in range(binary_steps if len(act) else 0):
            mid = (lo[act] + hi[act]) / 2
            a, s = attack.perturb(model, x[act], criterion.subset(act), mid,
                                  generator=generator, tally=own, index=act)
            if steps:
                tally.add(act, times=steps + 1)
            hi[act[s]] = mid[s]
            best[act[s]] = a[s]
            lo[act[~s]] = mid[~s]
    return MinimalEpsilonResult(hi.cpu(), best, attack.norm, max_epsilon, tally.passes,
                                method="robfr-linear-binary")
