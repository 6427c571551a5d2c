"""The units of work of an experiment: attack (:mod:`facerobust.eval.attack_unit`) and
minimal-perturbation units, both sharded (:mod:`facerobust.eval.shards`), and defense, fusion
and detector units (one piece each; the clean unit is
:meth:`facerobust.eval.experiment.Experiment.clean_unit`). Each gives a typed result from
:mod:`facerobust.eval.results`."""

from __future__ import annotations

import time
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from facerobust.attacks.minimal import minimal_epsilon
from facerobust.attacks.registry import build_attack
from facerobust.core.stats import Rate
from facerobust.data.chip_rows import take_rows
from facerobust.defenses import parse_defense
from facerobust.eval.attack_unit import AttackShards
from facerobust.eval.config import DefenseConfig, FusionConfig
from facerobust.eval.defense_eval import (
    DefenseEvalOptions,
    evaluate_defense,
    evaluate_defense_identification,
)
from facerobust.eval.detection import detector_unit as run
from facerobust.eval.detector_config import DetectorConfig
from facerobust.eval.experiment import Experiment, GoalRows
from facerobust.eval.fusion_eval import FusionOptions, evaluate_fusion
from facerobust.eval.results import DefenseUnit, FusionUnit, MinimalUnit
from facerobust.eval.results_detection import DetectorUnit
from facerobust.eval.shards import Part, shard_bounds, shard_seed
from facerobust.eval.tasks import VERIFICATION_GOALS, make_criterion, targets_for

__all__ = ["AttackShards", "MinimalShards", "defense_unit", "detector_unit", "fusion_unit"]


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


def defense_unit(exp: Experiment, dcfg: DefenseConfig, seed: int) -> DefenseUnit:
    """One defense judged under naive, direct, adaptive (BPDA + EOT) and optional black-box
    attacks, on verification pairs or on the identification probes."""

    attack = build_attack(dcfg.attack, dcfg.threat, steps=dcfg.steps)
    blackbox = (build_attack("square", dcfg.threat, queries=dcfg.blackbox_queries)
                if dcfg.blackbox_queries else None)
    options = DefenseEvalOptions(
        epsilons=dcfg.epsilons, goal=dcfg.goal, eot_samples=dcfg.eot, n_attack=dcfg.samples,
        direct=dcfg.direct, blackbox=blackbox, batch_size=exp.cfg.run.batch_size, seed=seed,
        progress=exp.progress)
    chips = exp.chips.chips
    if dcfg.goal in VERIFICATION_GOALS:
        a, b = torch.as_tensor(exp.pairs.a), torch.as_tensor(exp.pairs.b)
        return evaluate_defense(exp.models[exp.victim], parse_defense(dcfg.spec),
                                take_rows(chips, a), take_rows(chips, b),
                                torch.as_tensor(exp.pairs.same), attack, options)
    rows, labels = exp.probe_rows()
    n_classes = len(exp.split.names) if exp.split is not None else 0
    targets = torch.as_tensor(targets_for(labels, n_classes, seed))
    return evaluate_defense_identification(
        exp.identification_model(exp.victim), parse_defense(dcfg.spec),
        take_rows(chips, torch.as_tensor(rows)), torch.as_tensor(labels), attack, options,
        targets=targets)


def fusion_unit(exp: Experiment, fcfg: FusionConfig, seed: int) -> FusionUnit:
    """Score-level fusion of ``fcfg.models`` as a verifier, under the white-box attack on the
    fusion and chips crafted on each single member (:mod:`facerobust.eval.fusion_eval`)."""

    chips = exp.chips.chips
    a, b = torch.as_tensor(exp.pairs.a), torch.as_tensor(exp.pairs.b)
    return evaluate_fusion(
        {name: exp.models[name] for name in fcfg.models}, take_rows(chips, a),
        take_rows(chips, b),
        torch.as_tensor(exp.pairs.same), build_attack(fcfg.attack, fcfg.threat, steps=fcfg.steps),
        FusionOptions(epsilons=fcfg.epsilons, goal=fcfg.goal, n_attack=fcfg.samples,
                      batch_size=exp.cfg.run.batch_size, seed=seed))


def detector_unit(exp: Experiment, dcfg: DetectorConfig, key: str, seed: int, out: Path
                  ) -> DetectorUnit:
    """One ``[[detector]]``: fitted, calibrated, scored and adaptively attacked
    (:mod:`facerobust.eval.detection`)."""

    return run(exp, dcfg, key, seed, out)
