"""An ensemble of verification models as a defense (score-level fusion), judged honestly.

The fused verifier accepts a pair when the mean over members of ``distance_i / threshold_i``
is <= 1. It is attacked two ways, each budget at full strength:

* ``adaptive`` -- the white-box attack on the whole fused verifier
  (:class:`~facerobust.attacks.ensemble.FusedCriterion` on the concatenated members);
* ``from_member[m]`` -- chips crafted on member ``m`` alone (what transfer from one leaked
  model achieves), judged by the fused decision; ``member_whitebox[m]`` is the same chips
  judged by ``m`` itself.

Attacked samples: pairs the fused verifier decides correctly for the goal (genuine accepted
for dodging, impostor rejected for impersonation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from facerobust.attacks.base import check_int
from facerobust.attacks.ensemble import Ensemble, FusedCriterion
from facerobust.attacks.registry import full_budget
from facerobust.attacks.threat import LINF, Threat
from facerobust.core.stats import Rate
from facerobust.eval.results import FusionUnit
from facerobust.eval.tasks import embed, make_criterion
from facerobust.models.base import FaceModel


def _normalised_distance(model: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    face = cast(FaceModel, model)  # duck-typed: .distance and .threshold
    return face.distance(a, b) / float(face.threshold)


def _fused(members: dict[str, nn.Module], refs: dict[str, torch.Tensor], goal: str,
           rows: torch.Tensor) -> tuple[Ensemble, FusedCriterion]:
    names = list(members)
    sizes = [int(refs[n].shape[1]) for n in names]
    crit = FusedCriterion([make_criterion(goal, members[n], refs[n][rows]) for n in names],
                          sizes)
    return Ensemble([members[n] for n in names], sizes), crit


def _sweep(attack: Any, model: nn.Module, x: torch.Tensor, crit: Any, eps: list[float],
           seed: int) -> list[torch.Tensor]:
    return [full_budget(attack)(model, x, crit, epsilons=[e],
                                generator=torch.Generator().manual_seed(seed)).clipped[0]
            for e in eps]


@dataclass(frozen=True)
class FusionOptions:
    """How the fusion is judged: the budgets ``epsilons`` (each at full strength), the
    verification ``goal``, at most ``n_attack`` attacked pairs, the batch size and the seed."""

    epsilons: tuple[float, ...]
    goal: str = "dodging"
    n_attack: int = 16
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        eps = tuple(float(e) for e in self.epsilons)
        if not eps or any(not e >= 0 for e in eps):
            raise ValueError(f"epsilons must be a non-empty list of budgets >= 0, got "
                             f"{list(eps)}")
        object.__setattr__(self, "epsilons", eps)
        if self.goal not in ("dodging", "impersonation"):
            raise ValueError(f"goal must be 'dodging' or 'impersonation', got {self.goal!r}")
        check_int("n_attack", self.n_attack)
        check_int("batch_size", self.batch_size)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")


def evaluate_fusion(members: dict[str, nn.Module], x1: torch.Tensor, x2: torch.Tensor,
                    same: torch.Tensor, attack: Any, options: FusionOptions) -> FusionUnit:
    """Judge the score-level fusion of ``members`` (>= 2 FaceModels) on pairs ``x1``/``x2``
    under ``attack``."""
    if len(members) < 2:
        raise ValueError(f"fusion needs >= 2 models, got {list(members)}")
    goal, n_attack, batch_size, seed = (options.goal, options.n_attack, options.batch_size,
                                        options.seed)
    start, eps = time.perf_counter(), list(options.epsilons)
    e1 = {n: embed(m, x1, batch_size) for n, m in members.items()}
    e2 = {n: embed(m, x2, batch_size) for n, m in members.items()}
    norm_d = {n: _normalised_distance(m, e1[n], e2[n]) for n, m in members.items()}
    fused = torch.stack(list(norm_d.values())).mean(0)
    accept = fused <= 1.0
    wanted = same & accept if goal == "dodging" else ~same & ~accept
    idx = wanted.nonzero()[:, 0][:n_attack]
    threat: Threat = getattr(attack, "threat", LINF)
    norm = threat.name
    clean_members = {n: Rate.of((d <= 1.0) == same) for n, d in norm_d.items()}
    if len(idx) == 0:
        none = [Rate(0, 0) for _ in eps]
        return FusionUnit(list(members), goal, type(attack).__name__, norm, eps,
                          [threat.format_epsilon(e) for e in eps], Rate.of(accept == same),
                          clean_members, 0, none, {n: none for n in members},
                          {n: none for n in members}, time.perf_counter() - start)
    model, crit = _fused(members, e2, goal, idx)
    xs = x1[idx]

    def judged(advs: list[torch.Tensor]) -> list[Rate]:
        return [Rate.of(crit.is_adversarial(embed(model, a, batch_size))) for a in advs]

    adaptive = judged(_sweep(attack, model, xs, crit, eps, seed))
    from_member, member_whitebox = {}, {}
    for name, member in members.items():
        own = make_criterion(goal, member, e2[name][idx])
        advs = _sweep(attack, member, xs, own, eps, seed)
        from_member[name] = judged(advs)
        member_whitebox[name] = [Rate.of(own.is_adversarial(embed(member, a, batch_size)))
                                 for a in advs]
    return FusionUnit(list(members), goal, type(attack).__name__, norm, eps,
                      [threat.format_epsilon(e) for e in eps], Rate.of(accept == same),
                      clean_members, len(idx), adaptive, from_member, member_whitebox,
                      time.perf_counter() - start)
