"""The units of work of an experiment: attack (:mod:`facerobust.eval.attack_unit`),
minimal-perturbation, defense and fusion units, all sharded by sample
(:mod:`facerobust.eval.shards`), and detector units (one piece each, on the adversarial data
set they share, itself sharded: :mod:`facerobust.eval.detection_data`; the clean unit is
:meth:`facerobust.eval.experiment.Experiment.clean_unit`). Each gives a typed result from
:mod:`facerobust.eval.results`."""

from __future__ import annotations

import time
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
import torch

from facerobust.attacks.minimal import minimal_epsilon
from facerobust.attacks.registry import build_attack
from facerobust.core.precision import crafting
from facerobust.core.stats import Rate
from facerobust.data.chip_rows import take_rows
from facerobust.defenses import parse_defense
from facerobust.eval.attack_unit import AttackShards
from facerobust.eval.config import DefenseConfig, FusionConfig
from facerobust.eval.defense_eval import (
    DefenseEvalOptions,
    DefensePlan,
    attack_part,
    merge_defense,
    pair_embeddings,
    plan_identification,
    plan_verification,
)
from facerobust.eval.detection import DetectorShards
from facerobust.eval.detector_config import DetectorConfig
from facerobust.eval.experiment import Experiment, GoalRows
from facerobust.eval.fusion_eval import (
    FusionOptions,
    FusionPlan,
    fusion_part,
    merge_fusion,
    plan_fusion,
)
from facerobust.eval.results import DefenseUnit, FusionUnit, MinimalUnit
from facerobust.eval.shards import Part, ShardedUnit, shard_bounds, shard_seed
from facerobust.eval.tasks import VERIFICATION_GOALS, make_criterion, model_device, targets_for

PlanT = TypeVar("PlanT", DefensePlan, FusionPlan)

__all__ = ["AttackShards", "DefenseShards", "FusionShards", "MinimalShards", "detector_unit",
           "sharded"]


class MinimalShards:
    """Smallest successful budget per sample on the victim (RobFR's headline metric), as
    shards (:mod:`facerobust.eval.shards`)."""

    def __init__(self, exp: Experiment, seed: int) -> None:
        self.exp, self.seed = exp, seed

    @cached_property
    def samples(self) -> GoalRows:
        m = self.exp.cfg.minimal
        return self.exp.goal_rows(m.goal, m.samples, self.seed)

    def bounds(self) -> list[tuple[int, int]]:
        return shard_bounds(len(self.samples), self.exp.cfg.run.shard_size)

    def run(self, index: int) -> Part:

        m = self.exp.cfg.minimal
        tic = time.perf_counter()
        setup = self.samples.take(*self.bounds()[index])
        victim, ref = setup.refs[self.exp.victim]
        attack = build_attack(m.attack, m.threat, steps=m.steps)
        # the search's verdicts are its findings: it crafts in bfloat16 only with an attack
        # whose stopping verdicts are float32 forwards (PGD, BIM, MI-FGSM, CW)
        low = self.exp.cfg.run.precision if attack.float32_verdicts else "fp32"
        with crafting(low, model_device(victim)):
            result = minimal_epsilon(
                victim, setup.x, make_criterion(m.goal, victim, ref), attack=attack,
                max_epsilon=m.max_epsilon,
                generator=torch.Generator().manual_seed(shard_seed(self.seed, index)))
        return {"epsilons": result.epsilons.clone(),
                "passes": int(result.passes), "seconds": time.perf_counter() - tic}

    def merge(self, parts: list[Part]) -> MinimalUnit:
        m = self.exp.cfg.minimal
        eps = torch.cat([p["epsilons"] for p in parts]) if parts else torch.zeros(0)
        per_sample = [None if not np.isfinite(e) else float(e) for e in eps.tolist()]
        found = [e for e in per_sample if e is not None]
        return MinimalUnit(
            attack=m.attack, norm=m.norm, goal=m.goal, n=len(per_sample),
            max_epsilon=m.max_epsilon, per_sample=per_sample,
            found=Rate(len(found), len(per_sample)),
            median=float(np.median(found)) if len(found) * 2 >= len(per_sample) else None,
            passes=sum(int(p["passes"]) for p in parts),
            seconds=sum(float(p["seconds"]) for p in parts))


class PlannedShards(Generic[PlanT]):
    """Shards of the samples a plan chose (``plan.idx``): the plan is computed once by
    :meth:`state` (on the driver) and handed to every shard with :meth:`adopt`."""

    exp: Experiment
    _plan: PlanT | None

    def state(self) -> PlanT:
        raise NotImplementedError

    def adopt(self, plan: PlanT) -> None:
        self._plan = plan

    def bounds(self) -> list[tuple[int, int]]:
        return shard_bounds(len(self.state().idx), self.exp.cfg.run.shard_size)


class DefenseShards(PlannedShards[DefensePlan]):
    """One defense judged under naive, direct, adaptive (BPDA + EOT) and optional black-box
    attacks, on verification pairs or on the identification probes, as shards of the attacked
    samples; the clean figures and the choice of samples are its state
    (:class:`~facerobust.eval.defense_eval.DefensePlan`), computed once."""

    def __init__(self, exp: Experiment, dcfg: DefenseConfig, seed: int) -> None:
        self.exp, self.dcfg, self.seed = exp, dcfg, seed
        self.defense = parse_defense(dcfg.spec)
        self.attack = build_attack(dcfg.attack, dcfg.threat, steps=dcfg.steps)
        blackbox = (build_attack("square", dcfg.threat, queries=dcfg.blackbox_queries)
                    if dcfg.blackbox_queries else None)
        self.options = DefenseEvalOptions(
            epsilons=dcfg.epsilons, goal=dcfg.goal, eot_samples=dcfg.eot,
            n_attack=dcfg.samples, direct=dcfg.direct, blackbox=blackbox,
            batch_size=exp.cfg.run.batch_size, seed=seed, progress=exp.progress,
            precision=exp.cfg.run.precision)
        self.verification = dcfg.goal in VERIFICATION_GOALS
        self._plan: DefensePlan | None = None

    @property
    def model(self) -> torch.nn.Module:
        exp = self.exp
        return exp.models[exp.victim] if self.verification \
            else exp.identification_model(exp.victim)

    def _rows(self) -> torch.Tensor:
        """Chip rows of the candidate samples (the probe of each pair, or the probes)."""
        return torch.as_tensor(self.exp.pairs.a if self.verification
                               else self.exp.probe_rows()[0])

    def state(self) -> DefensePlan:
        if self._plan is None:
            exp, chips = self.exp, self.exp.chips.chips
            if self.verification:
                b = torch.as_tensor(exp.pairs.b)
                pairs = pair_embeddings(self.model, self.defense, chips, (self._rows(), b),
                                        self.options, bare_all=exp.embeddings(exp.victim))
                self._plan = plan_verification(
                    self.model, self.defense, take_rows(chips, self._rows()),
                    take_rows(chips, b), torch.as_tensor(exp.pairs.same), self.options,
                    embeddings=pairs)
            else:
                labels = exp.probe_rows()[1]
                n_classes = len(exp.split.names) if exp.split is not None else 0
                targets = torch.as_tensor(targets_for(labels, n_classes, self.seed))
                self._plan = plan_identification(
                    self.model, self.defense, take_rows(chips, self._rows()),
                    torch.as_tensor(labels), self.options, targets=targets)
        return self._plan

    def run(self, index: int) -> Part:
        lo, hi = self.bounds()[index]
        plan = self.state()
        rows = self._rows()[plan.idx[lo:hi]]
        options = replace(self.options, seed=shard_seed(self.seed, index))
        return attack_part(self.model, self.defense, self.exp.chips.chips[rows],
                           (plan.ref_bare[lo:hi], plan.ref_defended[lo:hi]), self.attack,
                           options)

    def merge(self, parts: list[Part]) -> DefenseUnit:
        return merge_defense(self.model, self.defense, self.attack, self.options, self.state(),
                             parts)


class FusionShards(PlannedShards[FusionPlan]):
    """Score-level fusion of ``fcfg.models`` as a verifier, under the white-box attack on the
    fusion and chips crafted on each single member (:mod:`facerobust.eval.fusion_eval`), as
    shards of the attacked pairs; the clean figures and the pairs are its state."""

    def __init__(self, exp: Experiment, fcfg: FusionConfig, seed: int) -> None:
        self.exp, self.fcfg, self.seed = exp, fcfg, seed
        self.attack = build_attack(fcfg.attack, fcfg.threat, steps=fcfg.steps)
        self.options = FusionOptions(epsilons=fcfg.epsilons, goal=fcfg.goal,
                                     n_attack=fcfg.samples,
                                     batch_size=exp.cfg.run.batch_size, seed=seed)
        self.members = {name: exp.models[name] for name in fcfg.models}
        self._plan: FusionPlan | None = None

    def state(self) -> FusionPlan:
        if self._plan is None:
            exp, chips = self.exp, self.exp.chips.chips
            a, b = torch.as_tensor(exp.pairs.a), torch.as_tensor(exp.pairs.b)
            self._plan = plan_fusion(self.members, take_rows(chips, a), take_rows(chips, b),
                                     torch.as_tensor(exp.pairs.same), self.options)
        return self._plan

    def run(self, index: int) -> Part:
        lo, hi = self.bounds()[index]
        plan = self.state()
        rows = torch.as_tensor(self.exp.pairs.a)[plan.idx[lo:hi]]
        refs = {name: ref[lo:hi] for name, ref in plan.refs.items()}
        return fusion_part(self.members, self.exp.chips.chips[rows], refs,
                           self.attack, replace(self.options, seed=shard_seed(self.seed, index)))

    def merge(self, parts: list[Part]) -> FusionUnit:
        return merge_fusion(list(self.members), self.attack, self.options, self.state(), parts)


def sharded(shards: DefenseShards | FusionShards | MinimalShards) -> ShardedUnit:
    """``shards`` as a :class:`~facerobust.eval.shards.ShardedUnit` (with its state when it
    has one)."""
    state = getattr(shards, "state", None)
    return ShardedUnit(shards.bounds, shards.run, shards.merge, state,
                       getattr(shards, "adopt", None))


def detector_unit(exp: Experiment, dcfg: DetectorConfig, key: str, seed: int, out: Path
                  ) -> ShardedUnit:
    """One ``[[detector]]``: fitted, calibrated, scored and adaptively attacked, one shard per
    variant (:mod:`facerobust.eval.detection`)."""
    shards = DetectorShards(exp, dcfg, key, seed, out)
    return ShardedUnit(shards.bounds, shards.run, shards.merge)
