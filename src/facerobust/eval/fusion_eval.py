"""An ensemble of verification models as a defense (score-level fusion), judged honestly.

The fused verifier accepts a pair when the mean over members of ``distance_i / threshold_i``
is <= 1. It is attacked two ways, each budget at full strength:

* ``adaptive`` -- the white-box attack on the whole fused verifier
  (:class:`~facerobust.attacks.ensemble.FusedCriterion` on the concatenated members);
* ``from_member[m]`` -- chips crafted on member ``m`` alone (what transfer from one leaked
  model achieves), judged by the fused decision; ``member_whitebox[m]`` is the same chips
  judged by ``m`` itself.

Attacked samples: pairs the fused verifier decides correctly for the goal (genuine accepted
for dodging, impostor rejected for impersonation). Judged in three steps so the audit can shard
it by sample: :func:`plan_fusion` (clean figures, attacked pairs, references),
:func:`fusion_part` on any slice of the attacked pairs, :func:`merge_fusion`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
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


@dataclass(frozen=True)
class FusionPlan:
    """What every shard of a fusion unit shares: the clean figures, the attacked pairs
    (``idx``) and each member's enrolled descriptor of them."""

    clean: Rate
    clean_members: dict[str, Rate]
    idx: torch.Tensor
    refs: dict[str, torch.Tensor]


def plan_fusion(members: dict[str, nn.Module], x1: torch.Tensor, x2: torch.Tensor,
                same: torch.Tensor, options: FusionOptions) -> FusionPlan:
    """Clean decisions of the fusion and of each member on every pair, and the pairs to
    attack."""
    if len(members) < 2:
        raise ValueError(f"fusion needs >= 2 models, got {list(members)}")
    batch = options.batch_size
    e1 = {n: embed(m, x1, batch) for n, m in members.items()}
    e2 = {n: embed(m, x2, batch) for n, m in members.items()}
    norm_d = {n: _normalised_distance(m, e1[n], e2[n]) for n, m in members.items()}
    accept = torch.stack(list(norm_d.values())).mean(0) <= 1.0
    wanted = same & accept if options.goal == "dodging" else ~same & ~accept
    idx = wanted.nonzero()[:, 0][:options.n_attack]
    return FusionPlan(Rate.of(accept == same),
                      {n: Rate.of((d <= 1.0) == same) for n, d in norm_d.items()}, idx,
                      {n: e[idx] for n, e in e2.items()})


def fusion_part(members: dict[str, nn.Module], xs: torch.Tensor, refs: dict[str, torch.Tensor],
                attack: Any, options: FusionOptions) -> dict[str, Any]:
    """The attacked pairs ``xs`` (each member's references ``refs``), seeded by
    ``options.seed``: per-sample success masks (n_eps, N) of the white-box attack on the
    fusion, and of each member's chips judged by the fusion and by that member."""
    start, eps, batch = time.perf_counter(), list(options.epsilons), options.batch_size
    model, crit = _fused(members, refs, options.goal, torch.arange(len(xs)))

    def judged(advs: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([crit.is_adversarial(embed(model, a, batch)).bool().cpu()
                            for a in advs])

    adaptive = judged(_sweep(attack, model, xs, crit, eps, options.seed))
    from_member, member_whitebox = {}, {}
    for name, member in members.items():
        own = make_criterion(options.goal, member, refs[name])
        advs = _sweep(attack, member, xs, own, eps, options.seed)
        from_member[name] = judged(advs)
        member_whitebox[name] = torch.stack(
            [own.is_adversarial(embed(member, a, batch)).bool().cpu() for a in advs])
    return {"adaptive": adaptive, "from_member": from_member,
            "member_whitebox": member_whitebox, "seconds": time.perf_counter() - start}


def merge_fusion(names: list[str], attack: Any, options: FusionOptions, plan: FusionPlan,
                 parts: list[dict[str, Any]]) -> FusionUnit:
    """The typed result of the parts of every attacked pair, in order (``seconds``: the
    parts' sum)."""
    eps = list(options.epsilons)
    threat: Threat = getattr(attack, "threat", LINF)

    def rates(pick: Any) -> list[Rate]:
        if not parts:
            return [Rate(0, 0) for _ in eps]
        return [Rate.of(m) for m in torch.cat([pick(p) for p in parts], dim=1)]

    return FusionUnit(
        names, options.goal, type(attack).__name__, threat.name, eps,
        [threat.format_epsilon(e) for e in eps], plan.clean, plan.clean_members,
        len(plan.idx), rates(lambda p: p["adaptive"]),
        {n: rates(lambda p, n=n: p["from_member"][n]) for n in names},
        {n: rates(lambda p, n=n: p["member_whitebox"][n]) for n in names},
        sum(float(p["seconds"]) for p in parts))


def evaluate_fusion(members: dict[str, nn.Module], x1: torch.Tensor, x2: torch.Tensor,
                    same: torch.Tensor, attack: Any, options: FusionOptions) -> FusionUnit:
    """Judge the score-level fusion of ``members`` (>= 2 FaceModels) on pairs ``x1``/``x2``
    under ``attack``."""
    start = time.perf_counter()
    plan = plan_fusion(members, x1, x2, same, options)
    parts = [] if not len(plan.idx) else [
        fusion_part(members, x1[plan.idx], plan.refs, attack, options)]
    unit = merge_fusion(list(members), attack, options, plan, parts)
    return replace(unit, seconds=time.perf_counter() - start)
