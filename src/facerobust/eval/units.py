"""The units of work of an experiment: attack, minimal-perturbation and defense units (the
clean unit is :meth:`facerobust.eval.experiment.Experiment.clean_unit`). Each returns a typed
result from :mod:`facerobust.eval.results`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facerobust.attacks.base import flat_norm
from facerobust.attacks.ensemble import Ensemble, EnsembleCriterion
from facerobust.attacks.epsilons import format_epsilon
from facerobust.attacks.registry import (
    attack_entry,
    build_attack,
    full_budget,
    resolve_steps_queries,
)
from facerobust.eval.config import AttackConfig, DefenseConfig, FusionConfig
from facerobust.eval.detector_config import DetectorConfig
from facerobust.eval.examples import save_example_grid
from facerobust.eval.experiment import Experiment, GoalSetup
from facerobust.eval.results import (
    AttackUnit,
    DefenseUnit,
    FusionUnit,
    MinimalUnit,
    ModelOutcome,
)
from facerobust.eval.results_detection import DetectorUnit
from facerobust.eval.stats import Rate
from facerobust.eval.tasks import (
    VERIFICATION_GOALS,
    attack_in_batches,
    make_criterion,
    model_device,
    score_goal,
    targets_for,
)

EXAMPLE_ROWS = 4


def attack_unit(exp: Experiment, atk: AttackConfig, goal: str, key: str, seed: int,
                out_dir: Path) -> AttackUnit:
    """``atk`` with ``goal`` on the victim at every epsilon.

    ``success`` is success on the victim (early stopping: each sample's first successful
    iterate). Transfer, ``full_budget_success`` and the example grid use adversarials crafted
    *for* each budget at full strength (every step run, final iterate), re-scored unchanged on
    every other model; a target's transfer counts only samples it handled correctly when
    clean (its clean failure rate is beside it)."""
    batch = exp.cfg.run.batch_size
    n = exp.cfg.data.attack_pairs if goal in VERIFICATION_GOALS else exp.cfg.identification.probes
    setup = exp.goal_setup(goal, n, seed)
    if len(setup.x) == 0:
        return _nothing_to_attack(exp, atk, goal, key)
    source = Source.of(setup, list(atk.surrogates) or [exp.victim])
    tic = time.perf_counter()
    swept, queries = _run(exp, atk, goal, setup, source, seed, full=False)
    seconds = time.perf_counter() - tic
    entry = attack_entry(atk.name)
    budget_bound = entry.kind == "white-box" and not entry.minimizes
    full = _run(exp, atk, goal, setup, source, seed, full=True)[0] if budget_bound else swept
    own = _source_outcome(setup, source, setup.x, swept, batch, exp.victim)
    own_full = _source_outcome(setup, source, setup.x, full, batch, exp.victim)
    transfer = {name: _outcome(model, goal, setup.x, full, target, batch, only_correct=True)
                for name, (model, target) in setup.refs.items() if name not in source.names}
    sizes = torch.stack([flat_norm(a - setup.x, atk.norm) for a in full])  # (n_eps, N)
    examples = _examples(out_dir, key, setup.x, full[-1], own_full, goal,
                         f"{atk.name.upper()} {atk.norm} {goal}, eps="
                         f"{format_epsilon(atk.epsilons[-1], atk.norm)} (full budget)")
    return AttackUnit(
        key=key.removeprefix(f"attack-{exp.victim}-"), attack=atk.name, kind=entry.kind,
        norm=atk.norm, goal=goal, victim=exp.victim, epsilons=list(atk.epsilons),
        epsilon_labels=[format_epsilon(e, atk.norm) for e in atk.epsilons], n=len(setup.x),
        settings=resolve_steps_queries(atk.name, atk.steps, atk.queries),
        clean_success=own.clean_success, success=own.success, score_clean=own.score_clean,
        score_adv=own_full.score_adv, transfer=transfer,
        mean_perturbation=sizes.mean(1).tolist(), max_perturbation=sizes.amax(1).tolist(),
        full_budget_success=own_full.success,
        transfer_adversarials="full budget" if budget_bound else "minimal (the attack "
        "minimises the perturbation; each budget clips it)", surrogates=list(atk.surrogates),
        queries_mean=float(torch.cat(queries).mean()) if queries else None,
        examples=examples, seconds=seconds)


@dataclass(frozen=True)
class Source:
    """The model the adversarials are crafted on: the victim, or an ensemble of surrogates
    (success = every member fooled)."""

    names: list[str]
    model: torch.nn.Module
    criteria: list[Callable[[slice], Any]]
    sizes: list[int]

    @classmethod
    def of(cls, setup: GoalSetup, names: list[str]) -> Source:
        members = [setup.refs[n] for n in names]
        criteria: list[Callable[[slice], Any]] = [
            partial(_member_criterion, setup.goal, m, ref) for m, ref in members]
        if len(members) == 1:
            return cls(names, members[0][0], criteria, [])
        with torch.no_grad():
            sizes = [int(m(setup.x[:1].to(model_device(m))).shape[1]) for m, _ in members]
        ensemble = Ensemble([m for m, _ in members], sizes)
        return cls(names, ensemble, criteria, sizes)

    def criterion(self, rows: slice) -> Any:
        if not self.sizes:
            return self.criteria[0](rows)
        return EnsembleCriterion([c(rows) for c in self.criteria], self.sizes)


def _member_criterion(goal: str, model: torch.nn.Module, ref: torch.Tensor, rows: slice) -> Any:
    return make_criterion(goal, model, ref[rows])


def _source_outcome(setup: GoalSetup, source: Source, x: torch.Tensor, adv: torch.Tensor,
                    batch: int, victim: str) -> ModelOutcome:
    """The source's view: the victim's outcome; another single model's over the samples it
    handled correctly; for an ensemble the first member's scores with success = every member
    fooled."""
    from facerobust.eval.tasks import embed

    model, ref = setup.refs[source.names[0]]
    other = source.names != [victim]
    first = _outcome(model, setup.goal, x, adv, ref, batch, only_correct=other)
    if not source.sizes:
        return first
    crit = source.criterion(slice(None))

    def fooled(images: torch.Tensor) -> Rate:
        return Rate.of(crit.is_adversarial(embed(source.model, images, batch)).numpy())

    return dataclasses.replace(first, clean_success=fooled(x),
                               success=[fooled(a) for a in adv])


def _run(exp: Experiment, atk: AttackConfig, goal: str, setup: GoalSetup, source: Source,
         seed: int, *, full: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Adversarials (n_eps, N, 3, H, W): one sweep over all budgets with early stopping, or
    (``full``) each budget run on its own at full strength, seeded alike."""
    batch = exp.cfg.run.batch_size
    budgets = [[e] for e in atk.epsilons] if full else [list(atk.epsilons)]
    per_budget, queries = [], []
    for eps in budgets:
        def make(rows: slice) -> Any:
            starts = None if setup.starting_points is None else setup.starting_points[rows]
            attack = build_attack(atk.name, norm=atk.norm, steps=atk.steps, queries=atk.queries,
                                  starting_points=starts)
            return full_budget(attack) if full else attack

        adv, _, counts = attack_in_batches(make, source.model, setup.x, source.criterion, eps,
                                           batch_size=batch,
                                           generator=torch.Generator().manual_seed(seed))
        per_budget.append(adv)
        queries.extend(counts)
    return torch.cat(per_budget, dim=0), queries


def _nothing_to_attack(exp: Experiment, atk: AttackConfig, goal: str, key: str) -> AttackUnit:
    """A unit without samples (the victim decides none correctly): zero trials, said so."""
    none = [Rate(0, 0) for _ in atk.epsilons]
    empty = ModelOutcome(Rate(0, 0), none, [], [[] for _ in atk.epsilons])
    return AttackUnit(
        key=key.removeprefix(f"attack-{exp.victim}-"), attack=atk.name,
        kind=attack_entry(atk.name).kind, norm=atk.norm, goal=goal, victim=exp.victim,
        epsilons=list(atk.epsilons),
        epsilon_labels=[format_epsilon(e, atk.norm) for e in atk.epsilons], n=0,
        settings=resolve_steps_queries(atk.name, atk.steps, atk.queries),
        clean_success=Rate(0, 0), success=none, score_clean=[], score_adv=empty.score_adv,
        transfer={m: empty for m in exp.models if m != exp.victim},
        mean_perturbation=[0.0] * len(none), max_perturbation=[0.0] * len(none),
        full_budget_success=none, transfer_adversarials="none",
        notes=[f"no sample the victim decides correctly for {goal}: nothing attacked"],
        surrogates=list(atk.surrogates))


def _outcome(model: torch.nn.Module, goal: str, x: torch.Tensor, adv: torch.Tensor,
             target: torch.Tensor, batch: int, *, only_correct: bool = False) -> ModelOutcome:
    """Success of ``adv`` on ``model``; ``only_correct`` counts only the samples the model
    handled correctly when clean (its own clean failures are not transfer)."""
    clean_success, clean_score = score_goal(model, goal, x, target, batch)
    rows = [score_goal(model, goal, a, target, batch) for a in adv]
    keep = ~clean_success if only_correct else np.ones_like(clean_success)
    return ModelOutcome(clean_success=Rate.of(clean_success),
                        success=[Rate.of(s[keep]) for s, _ in rows],
                        score_clean=clean_score.tolist(),
                        score_adv=[sc.tolist() for _, sc in rows])


def _examples(out_dir: Path, key: str, x: torch.Tensor, adv: torch.Tensor, own: ModelOutcome,
              goal: str, title: str) -> str:
    rows = min(EXAMPLE_ROWS, len(x))
    what = "distance" if goal in VERIFICATION_GOALS else "p(class)"
    captions = [f"{what}: {own.score_clean[i]:.3f} -> {own.score_adv[-1][i]:.3f}"
                for i in range(rows)]
    rel = f"examples/{key}.png"
    save_example_grid(x[:rows], adv[:rows], captions, out_dir / rel, title=title)
    return rel


def minimal_unit(exp: Experiment, seed: int) -> MinimalUnit:
    """Smallest successful budget per sample on the victim (RobFR's headline metric)."""
    from facerobust.attacks.minimal import minimal_epsilon

    m = exp.cfg.minimal
    tic = time.perf_counter()
    setup = exp.goal_setup(m.goal, m.samples, seed)
    victim, ref = setup.refs[exp.victim]
    attack = build_attack(m.attack, norm=m.norm, steps=m.steps)
    result = minimal_epsilon(victim, setup.x, make_criterion(m.goal, victim, ref), attack=attack,
                             max_epsilon=m.max_epsilon,
                             generator=torch.Generator().manual_seed(seed))
    per_sample = [None if not np.isfinite(e) else float(e) for e in result.epsilons.tolist()]
    found = [e for e in per_sample if e is not None]
    return MinimalUnit(
        attack=m.attack, norm=m.norm, goal=m.goal, n=len(setup.x), max_epsilon=m.max_epsilon,
        per_sample=per_sample, found=Rate(len(found), len(per_sample)),
        median=float(np.median(found)) if len(found) * 2 >= len(per_sample) else None,
        passes=int(result.passes), seconds=time.perf_counter() - tic)


def defense_unit(exp: Experiment, dcfg: DefenseConfig, seed: int) -> DefenseUnit:
    """One defense judged under naive, direct, adaptive (BPDA + EOT) and optional black-box
    attacks, on verification pairs or on the identification probes."""
    from facerobust.defenses import parse_defense
    from facerobust.defenses.evaluate import evaluate_defense, evaluate_defense_identification

    attack = build_attack(dcfg.attack, norm=dcfg.norm, steps=dcfg.steps)
    blackbox = (build_attack("square", norm=dcfg.norm, queries=dcfg.blackbox_queries)
                if dcfg.blackbox_queries else None)
    common: dict[str, Any] = dict(
        attack=attack, epsilons=list(dcfg.epsilons), goal=dcfg.goal, eot_samples=dcfg.eot,
        n_attack=dcfg.samples, direct=dcfg.direct, blackbox=blackbox,
        batch_size=exp.cfg.run.batch_size, seed=seed, progress=exp.progress)
    chips = exp.chips.chips
    if dcfg.goal in VERIFICATION_GOALS:
        a, b = torch.as_tensor(exp.pairs.a), torch.as_tensor(exp.pairs.b)
        return evaluate_defense(exp.models[exp.victim], parse_defense(dcfg.spec), chips[a],
                                chips[b], torch.as_tensor(exp.pairs.same), **common)
    rows, labels = exp.probe_rows()
    n_classes = len(exp.split.names) if exp.split is not None else 0
    targets = torch.as_tensor(targets_for(labels, n_classes, seed))
    return evaluate_defense_identification(
        exp.identification_model(exp.victim), parse_defense(dcfg.spec),
        chips[torch.as_tensor(rows)], torch.as_tensor(labels), targets=targets, **common)


def fusion_unit(exp: Experiment, fcfg: FusionConfig, seed: int) -> FusionUnit:
    """Score-level fusion of ``fcfg.models`` as a verifier, under the white-box attack on the
    fusion and chips crafted on each single member (:mod:`facerobust.defenses.fusion`)."""
    from facerobust.defenses.fusion import evaluate_fusion

    chips = exp.chips.chips
    a, b = torch.as_tensor(exp.pairs.a), torch.as_tensor(exp.pairs.b)
    return evaluate_fusion(
        {name: exp.models[name] for name in fcfg.models}, chips[a], chips[b],
        torch.as_tensor(exp.pairs.same),
        attack=build_attack(fcfg.attack, norm=fcfg.norm, steps=fcfg.steps),
        epsilons=list(fcfg.epsilons), goal=fcfg.goal, n_attack=fcfg.samples,
        batch_size=exp.cfg.run.batch_size, seed=seed)


def detector_unit(exp: Experiment, dcfg: DetectorConfig, key: str, seed: int, out: Path
                  ) -> DetectorUnit:
    """One ``[[detector]]``: fitted, calibrated, scored and adaptively attacked
    (:mod:`facerobust.eval.detection`)."""
    from facerobust.eval.detection import detector_unit as run

    return run(exp, dcfg, key, seed, out)
