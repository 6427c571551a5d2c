"""The units of work of an experiment: attack, minimal-perturbation and defense units (the
clean unit is :meth:`facerobust.eval.experiment.Experiment.clean_unit`). Each returns a typed
result from :mod:`facerobust.eval.results`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facerobust.attacks.base import flat_norm
from facerobust.attacks.epsilons import format_epsilon
from facerobust.attacks.registry import attack_entry, build_attack, resolve_steps_queries
from facerobust.eval.config import AttackConfig, DefenseConfig
from facerobust.eval.examples import save_example_grid
from facerobust.eval.experiment import Experiment
from facerobust.eval.results import AttackUnit, DefenseUnit, MinimalUnit, ModelOutcome
from facerobust.eval.stats import Rate
from facerobust.eval.tasks import VERIFICATION_GOALS, make_criterion, score_goal, targets_for

EXAMPLE_ROWS = 4


def attack_unit(exp: Experiment, atk: AttackConfig, goal: str, key: str, seed: int,
                out_dir: Path) -> AttackUnit:
    """``atk`` with ``goal`` on the victim at every epsilon; the adversarials are re-scored
    unchanged on every other model (transfer)."""
    batch = exp.cfg.run.batch_size
    n = exp.cfg.data.attack_pairs if goal in VERIFICATION_GOALS else exp.cfg.identification.probes
    setup = exp.goal_setup(goal, n, seed)
    if len(setup.x) == 0:
        return _nothing_to_attack(exp, atk, goal, key)
    victim, ref = setup.refs[exp.victim]
    gen = torch.Generator().manual_seed(seed)
    tic = time.perf_counter()
    advs, queries = [], []
    for i in range(0, len(setup.x), batch):
        starts = None if setup.starting_points is None else setup.starting_points[i:i + batch]
        attack = build_attack(atk.name, norm=atk.norm, steps=atk.steps, queries=atk.queries,
                              starting_points=starts)
        crit = make_criterion(goal, victim, ref[i:i + batch])
        res = attack(victim, setup.x[i:i + batch], crit, epsilons=list(atk.epsilons),
                     generator=gen)
        advs.append(torch.stack(res.clipped))
        if res.queries is not None:
            queries.append(res.queries.float())
    seconds = time.perf_counter() - tic
    adv = torch.cat(advs, dim=1)  # (n_eps, N, 3, H, W)
    outcomes = {name: _outcome(model, goal, setup.x, adv, target, batch)
                for name, (model, target) in setup.refs.items()}
    own = outcomes.pop(exp.victim)
    sizes = torch.stack([flat_norm(a - setup.x, atk.norm) for a in adv])  # (n_eps, N)
    unit_key = key.removeprefix(f"attack-{exp.victim}-")
    examples = _examples(out_dir, key, setup.x, adv[-1], own, goal,
                         f"{atk.name.upper()} {atk.norm} {goal}, eps="
                         f"{format_epsilon(atk.epsilons[-1], atk.norm)}")
    return AttackUnit(
        key=unit_key, attack=atk.name, kind=attack_entry(atk.name).kind, norm=atk.norm,
        goal=goal, victim=exp.victim, epsilons=list(atk.epsilons),
        epsilon_labels=[format_epsilon(e, atk.norm) for e in atk.epsilons], n=len(setup.x),
        settings=resolve_steps_queries(atk.name, atk.steps, atk.queries),
        clean_success=own.clean_success, success=own.success, score_clean=own.score_clean,
        score_adv=own.score_adv, transfer=outcomes,
        mean_perturbation=sizes.mean(1).tolist(), max_perturbation=sizes.amax(1).tolist(),
        queries_mean=float(torch.cat(queries).mean()) if queries else None,
        examples=examples, seconds=seconds)


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
        notes=[f"no sample the victim decides correctly for {goal}: nothing attacked"])


def _outcome(model: torch.nn.Module, goal: str, x: torch.Tensor, adv: torch.Tensor,
             target: torch.Tensor, batch: int) -> ModelOutcome:
    clean_success, clean_score = score_goal(model, goal, x, target, batch)
    rows = [score_goal(model, goal, a, target, batch) for a in adv]
    return ModelOutcome(clean_success=Rate.of(clean_success),
                        success=[Rate.of(s) for s, _ in rows],
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
