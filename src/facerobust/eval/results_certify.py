"""Typed results of a ``[[certify]]`` unit: randomized-smoothing certificates of the victim's
decisions at one noise level, per group of probes (verification: genuine pairs, whose
correct decision is accept, and impostor pairs, reject; identification: probes of enrolled
people).

Per probe: ``radius`` (``None``: abstain or wrong). Per group: the certified rate at each
radius of the table (``{"k","n","rate","ci95"}``), the abstain rate, the smoothed and the
base model's clean accuracy, a curve for the figure, and the adaptive attack's flips of
certified decisions (``attack_flips``; sound certificates give 0)."""

from __future__ import annotations

import dataclasses

from facerobust.eval.results import Unit
from facerobust.eval.stats import Rate


@dataclasses.dataclass(frozen=True)
class CertifiedGroup(Unit):
    """One group of probes (``genuine``, ``impostor`` or ``identification``)."""

    name: str
    decision: str  # the correct decision: "accept", "reject" or "identity"
    n: int
    radius: list[float | None]  # per probe: certified radius of the correct decision
    abstain: list[bool]  # per probe: CERTIFY abstained
    certified: list[Rate]  # per radius of the unit's table
    abstained: Rate
    smoothed_correct: Rate  # the smoothed decision is the correct one (radius 0, certified)
    base_correct: Rate  # the base system without noise decides correctly
    curve_radii: list[float]
    curve: list[float]  # certified fraction at each curve radius
    attacked: int  # certified probes attacked within their radius
    attack_flips: int  # ... whose Monte Carlo re-estimated decision flipped
    seconds_per_certificate: float


@dataclasses.dataclass(frozen=True)
class CertifyUnit(Unit):
    """Certificates of one model's decisions at noise level ``sigma``."""

    key: str
    model: str
    goal: str
    sigma: float
    n0: int
    n: int
    alpha: float
    radii: list[float]
    attack: str  # e.g. "EOT-PGD L2, 20 steps x 16 draws" or "none"
    groups: list[CertifiedGroup]
    seconds: float = 0.0

    @property
    def attack_flips(self) -> int:
        return sum(g.attack_flips for g in self.groups)
