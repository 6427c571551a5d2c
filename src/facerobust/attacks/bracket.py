"""Per-sample bracket of the minimal-epsilon search: where to probe next, and the update.

Each sample keeps ``lo`` (largest budget known to fail, 0 at first) and ``hi`` (smallest budget
known to succeed, ``inf`` until one does), each with the criterion margin measured there (the
margin of the attack's returned point, read from the forward that judged it: no extra pass).

* Not bracketed yet: the first probe is the linear guess x ``OVERSHOOT`` (a linearisation
  under-estimates the budget an iterative attack needs on a curved model, and with warm
  starts a success makes every later probe cheaper); after a failure the next budget is
  extrapolated from the margins at 0 and ``lo`` (x1.15, at least x1.25 and at most x4 of
  ``lo``; doubling without margins).
* Bracketed by the clean image (``lo`` = 0) and a success: regula falsi between the clean
  margin and the success's margin with the Illinois rule (when ``hi`` moves twice in a row the
  clean margin is halved, so the probe moves down faster), kept ``GUARD`` x width inside.
* Bracketed by a failure and a success: bisection. Without margins (attacks that do not
  report them) every bracketed probe is the midpoint.

The search stops for a sample when ``hi - lo <= tol`` (the reported budget is ``hi``, where an
adversarial was found) or when it fails at ``max_epsilon``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

OVERSHOOT = 1.4  # first probe = linear guess x this (chosen on LFW probes, benchmarks/)
GUARD = 1 / 32  # a probe stays at least this fraction of the interval away from either end


@dataclass
class Bracket:
    lo: torch.Tensor
    hi: torch.Tensor
    m_lo: torch.Tensor
    m_hi: torch.Tensor
    side: torch.Tensor  # +1: hi moved last, -1: lo moved last, 0: neither yet
    dead: torch.Tensor  # failed at max_epsilon
    probed: torch.Tensor  # at least one probe made
    clean_margin: torch.Tensor
    uses_margins: bool

    @classmethod
    def start(cls, clean_margin: torch.Tensor, uses_margins: bool) -> Bracket:
        n, dev, dt = len(clean_margin), clean_margin.device, clean_margin.dtype
        lo = torch.zeros(n, dtype=dt, device=dev)
        m0 = clean_margin.to(dt) if uses_margins else torch.full_like(lo, -1.0)
        return cls(lo=lo, hi=torch.full_like(lo, math.inf), m_lo=m0.clone(),
                   m_hi=torch.ones_like(lo), side=torch.zeros(n, dtype=torch.long, device=dev),
                   dead=torch.zeros(n, dtype=torch.bool, device=dev),
                   probed=torch.zeros(n, dtype=torch.bool, device=dev),
                   clean_margin=m0, uses_margins=uses_margins)

    def active(self, tol: float) -> torch.Tensor:
        """Indices still searching."""
        open_ = torch.isinf(self.hi) & ~self.dead
        return (open_ | (torch.isfinite(self.hi) & (self.hi - self.lo > tol))).nonzero()[:, 0]

    def next_probe(self, act: torch.Tensor, guess: torch.Tensor, max_epsilon: float,
                   tol: float) -> torch.Tensor:
        lo, hi = self.lo[act], self.hi[act]
        up = self._extrapolate(act).clamp(max=max_epsilon)
        unbracketed = torch.where(self.probed[act], up, guess[act])
        return torch.where(torch.isinf(hi), unbracketed, self._interpolate(act, tol, lo, hi))

    def _extrapolate(self, act: torch.Tensor) -> torch.Tensor:
        lo = self.lo[act]
        if not self.uses_margins:
            return 2 * lo
        slope = (self.m_lo[act] - self.clean_margin[act]) / lo.clamp(min=1e-12)
        root = lo - self.m_lo[act] / slope.clamp(min=1e-12)
        est = torch.minimum(torch.maximum(1.15 * root, 1.25 * lo), 4 * lo)
        return torch.where(slope > 0, est, 2 * lo)

    def _interpolate(self, act: torch.Tensor, tol: float, lo: torch.Tensor, hi: torch.Tensor
                     ) -> torch.Tensor:
        width = hi - lo
        m_lo = self.m_lo[act].clamp(max=-1e-12)
        m_hi = self.m_hi[act].clamp(min=1e-12)
        frac = (-m_lo) / (m_hi - m_lo)
        # margins of successes are read at the first successful iterate (biased towards 0
        # under warm starts), so interpolate only from the clean margin to the first
        # success; once a failure is known, bisect (measured: fewer passes)
        frac = torch.where(lo > 0, torch.full_like(frac, 0.5), frac)
        if self.uses_margins:
            frac = frac.clamp(GUARD, 1 - GUARD)
        p = lo + width * frac
        return torch.where(torch.isfinite(p), p, (lo + hi) / 2)

    def update(self, act: torch.Tensor, probe: torch.Tensor, ok: torch.Tensor,
               margin: torch.Tensor | None, value: torch.Tensor, max_epsilon: float,
               tol: float) -> None:
        """Record a probe: success moves ``hi`` to ``value`` (the probe, or the tightened
        size), failure moves ``lo``; the Illinois rule halves the unmoved end's margin."""
        win, lose = act[ok], act[~ok]
        if self.uses_margins and margin is not None:
            again_hi = self.side[win] == 1
            self.m_lo[win[again_hi]] *= 0.5
            again_lo = self.side[lose] == -1
            self.m_hi[lose[again_lo]] *= 0.5
            self.m_hi[win] = margin[ok]
            self.m_lo[lose] = margin[~ok]
        self.hi[win] = value[ok]
        self.lo[lose] = probe[~ok]
        self.side[win], self.side[lose] = 1, -1
        self.probed[act] = True
        self.dead[lose[probe[~ok] >= max_epsilon]] = True
        # a success within the tolerance of 0 needs no failure to be bracketed
        small = win[self.hi[win] <= tol]
        self.lo[small] = 0.0
