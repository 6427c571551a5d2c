"""The attack unit, sharded: one attack and goal on the victim at every epsilon, with transfer.

Every white-box budget-bound attack runs once per budget at full strength (every step run,
final iterate); ``full_budget_success`` is the victim's verdict on those adversarials and
``success`` counts a sample as broken at a budget when it is broken at that budget or at a
smaller one (:func:`broken_within`: the smaller budget's adversarial is within this one too).
Minimising and black-box attacks run once over all budgets (each sample's first success).
Every verdict is the audit's float32 forward, never the attack's own check; with ``[run]
precision = "bf16"`` the full-strength budgets and CW (whose kept best a float32 forward
confirms) craft in bfloat16. Transfer and the example grid use the full-strength adversarials,
re-scored unchanged on every other model (without
gradients, in batches, each chip once per model and budget: the experiment's
score cache serves chips scored before, like the clean probes every unit of a goal shares);
a target's transfer counts only samples it handled correctly when clean (its clean failure
rate is beside it).

Each shard (:mod:`facerobust.eval.shards`) reads its own chips, attacks them with its own seed
and returns per-sample masks and scores; :meth:`AttackShards.merge` turns the concatenated
parts into the :class:`~facerobust.eval.results.AttackUnit`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facerobust.attacks.ensemble import Ensemble, EnsembleCriterion
from facerobust.attacks.registry import (
    attack_entry,
    build_attack,
    full_budget,
    resolve_steps_queries,
)
from facerobust.core.precision import crafting
from facerobust.core.stats import Rate
from facerobust.eval.config import AttackConfig
from facerobust.eval.examples import save_example_grid
from facerobust.eval.experiment import Experiment, GoalRows, GoalSetup
from facerobust.eval.results import AttackUnit, ModelOutcome
from facerobust.eval.shards import Part, shard_bounds, shard_seed
from facerobust.eval.tasks import (
    VERIFICATION_GOALS,
    attack_in_batches,
    embed,
    make_criterion,
    model_device,
)

EXAMPLE_ROWS = 4
# (goal, chips, reference) -> (success mask, score) on one model
Scorer = Callable[[str, torch.Tensor, torch.Tensor], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Source:
    """The model the adversarials are crafted on: the victim, or an ensemble of surrogates
    (success = every member fooled)."""

    names: list[str]
    model: torch.nn.Module
    criteria: list[Any]
    sizes: list[int]

    @classmethod
    def of(cls, setup: GoalSetup, names: list[str]) -> Source:
        members = [setup.refs[n] for n in names]
        criteria = [partial(_member_criterion, setup.goal, m, ref) for m, ref in members]
        if len(members) == 1:
            return cls(names, members[0][0], criteria, [])
        with torch.no_grad():
            sizes = [int(m(setup.x[:1].to(model_device(m))).shape[1]) for m, _ in members]
        return cls(names, Ensemble([m for m, _ in members], sizes), criteria, sizes)

    def criterion(self, rows: slice) -> Any:
        if not self.sizes:
            return self.criteria[0](rows)
        return EnsembleCriterion([c(rows) for c in self.criteria], self.sizes)


def _member_criterion(goal: str, model: torch.nn.Module, ref: torch.Tensor, rows: slice) -> Any:
    return make_criterion(goal, model, ref[rows])


def _scores(scorer: Scorer, goal: str, x: torch.Tensor, adv: torch.Tensor, target: torch.Tensor,
            *, only_correct: bool) -> Part:
    """Per-sample clean / adversarial success and score of ``adv`` on one model (``scorer``:
    the experiment's :class:`~facerobust.eval.tasks.ScoreCache` bound to it, so chips scored
    before -- by this or another unit -- are not scored again); ``keep`` marks the samples
    that count (with ``only_correct``: those it handled correctly when clean, so its own
    clean failures are not counted as transfer)."""
    clean, clean_score = scorer(goal, x, target)
    rows = [scorer(goal, a, target) for a in adv]
    keep = ~clean if only_correct else np.ones_like(clean)
    return {"clean": torch.from_numpy(clean), "clean_score": torch.from_numpy(clean_score),
            "adv": torch.from_numpy(np.stack([s for s, _ in rows])),
            "adv_score": torch.from_numpy(np.stack([sc for _, sc in rows])),
            "keep": torch.from_numpy(keep)}


def _source_scores(setup: GoalSetup, source: Source, adv: torch.Tensor, batch: int,
                   exp: Experiment) -> Part:
    """The source's view: the victim's outcome; another single model's over the samples it
    handled correctly; for an ensemble the first member's scores with success = every member
    fooled."""
    ref = setup.refs[source.names[0]][1]
    part = _scores(_scorer(exp, setup, source.names[0], batch), setup.goal, setup.x, adv, ref,
                   only_correct=source.names != [exp.victim])
    if source.sizes:
        crit = source.criterion(slice(None))

        def fooled(images: torch.Tensor) -> torch.Tensor:
            return crit.is_adversarial(embed(source.model, images, batch)).bool().cpu()

        part["clean"] = fooled(setup.x)
        part["adv"] = torch.stack([fooled(a) for a in adv])
        part["keep"] = torch.ones_like(part["clean"])
    return part


def broken_within(part: Part, epsilons: tuple[float, ...] | list[float]) -> Part:
    """``part`` with each budget's success widened to the samples fooled at that budget or at
    any smaller one: an adversarial within a smaller budget is within this one too."""
    eps = torch.as_tensor(list(epsilons), dtype=torch.float64)
    smaller = (eps[None, :] <= eps[:, None]).to(torch.float32)  # (k, j): eps_j <= eps_k
    adv = (smaller @ part["adv"].to(torch.float32)) > 0
    return {**part, "adv": adv}


def _scorer(exp: Experiment, setup: GoalSetup, name: str, batch: int) -> Scorer:
    """Scores on model ``name`` through the experiment's score cache."""
    return partial(exp.scores.score, name, setup.refs[name][0], batch_size=batch)


def _outcome(parts: list[Part]) -> ModelOutcome:
    def cat(name: str, dim: int) -> np.ndarray:
        return torch.cat([p[name] for p in parts], dim=dim).numpy()

    clean, keep, adv, adv_score = cat("clean", 0), cat("keep", 0), cat("adv", 1), \
        cat("adv_score", 1)
    return ModelOutcome(clean_success=Rate.of(clean),
                        success=[Rate.of(row[keep]) for row in adv],
                        score_clean=cat("clean_score", 0).tolist(),
                        score_adv=[row.tolist() for row in adv_score])


class AttackShards:
    """``atk`` with ``goal`` on the victim, as shards (see the module docstring)."""

    def __init__(self, exp: Experiment, atk: AttackConfig, goal: str, key: str, seed: int,
                 out_dir: Path) -> None:
        self.exp, self.atk, self.goal, self.key, self.seed = exp, atk, goal, key, seed
        self.out_dir = out_dir
        self.batch = exp.cfg.run.batch_size
        entry = attack_entry(atk.name)
        self.kind = entry.kind
        self.budget_bound = entry.kind == "white-box" and not entry.minimizes
        # a minimising attack whose kept best is float32-confirmed (CW) may craft in bf16
        self.float32_best = not self.budget_bound and \
            all(c.float32_verdicts for c in entry.classes.values())

    @cached_property
    def samples(self) -> GoalRows:
        verification = self.goal in VERIFICATION_GOALS
        n = self.exp.cfg.data.attack_pairs if verification else self.exp.cfg.identification.probes
        return self.exp.goal_rows(self.goal, n, self.seed)

    def bounds(self) -> list[tuple[int, int]]:
        return shard_bounds(len(self.samples), self.exp.cfg.run.shard_size)

    def run(self, index: int) -> Part:
        lo, hi = self.bounds()[index]
        setup = self.samples.take(lo, hi)
        seed = shard_seed(self.seed, index)
        source = Source.of(setup, list(self.atk.surrogates) or [self.exp.victim])
        tic = time.perf_counter()
        full, queries = self._attack(setup, source, seed, full=self.budget_bound)
        seconds = time.perf_counter() - tic
        own_full = _source_scores(setup, source, full, self.batch, self.exp)
        own = broken_within(own_full, self.atk.epsilons) if self.budget_bound else own_full
        transfer = {name: _scores(_scorer(self.exp, setup, name, self.batch), self.goal,
                                  setup.x, full, target, only_correct=True)
                    for name, (_, target) in setup.refs.items() if name not in source.names}
        shown = max(0, min(hi, EXAMPLE_ROWS) - lo)  # this shard's rows of the example grid
        return {"own": own, "own_full": own_full, "transfer": transfer,
                "sizes": torch.stack([self.atk.threat.norm(a - setup.x) for a in full]),
                "queries": torch.cat(queries) if queries else None, "seconds": seconds,
                "example_x": setup.x[:shown].clone(), "example_adv": full[-1][:shown].clone()}

    def _attack(self, setup: GoalSetup, source: Source, seed: int, *, full: bool
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Adversarials (n_eps, N, 3, H, W): one sweep over all budgets with early stopping,
        or (``full``) each budget run on its own at full strength, seeded alike."""
        atk = self.atk
        budgets = [[e] for e in atk.epsilons] if full else [list(atk.epsilons)]
        per_budget, queries = [], []
        for eps in budgets:
            def make(rows: slice) -> Any:
                starts = None if setup.starting_points is None else setup.starting_points[rows]
                attack = build_attack(atk.name, atk.threat, steps=atk.steps,
                                      queries=atk.queries, starting_points=starts)
                return full_budget(attack) if full else attack

            # only full-strength budgets and attacks whose own verdicts stay float32 (CW) craft
            # in bfloat16: a minimising or black-box attack keeps the iterate its own check
            # calls best, and a bfloat16 check passed CW iterates float32 rejects
            # (impersonation 18/64 against 64/64, seed experiment)
            low_ok = full or self.float32_best
            precision = self.exp.cfg.run.precision if low_ok else "fp32"
            with crafting(precision, model_device(source.model)):
                adv, _, counts = attack_in_batches(
                    make, source.model, setup.x, source.criterion, eps,
                    batch_size=self.batch, generator=torch.Generator().manual_seed(seed))
            per_budget.append(adv)
            queries.extend(counts)
        return torch.cat(per_budget, dim=0), queries

    def merge(self, parts: list[Part]) -> AttackUnit:
        atk, exp = self.atk, self.exp
        if not parts:
            return self._nothing_to_attack()
        own, own_full = _outcome([p["own"] for p in parts]), \
            _outcome([p["own_full"] for p in parts])
        transfer = {name: _outcome([p["transfer"][name] for p in parts])
                    for name in parts[0]["transfer"]}
        sizes = torch.cat([p["sizes"] for p in parts], dim=1)  # (n_eps, N)
        queries = [p["queries"] for p in parts if p["queries"] is not None]
        examples = self._examples(torch.cat([p["example_x"] for p in parts]),
                                  torch.cat([p["example_adv"] for p in parts]), own_full)
        return AttackUnit(
            key=self.key.removeprefix(f"attack-{exp.victim}-"), attack=atk.name,
            kind=self.kind, norm=atk.norm, goal=self.goal, victim=exp.victim,
            epsilons=list(atk.epsilons), epsilon_labels=self._labels(), n=sizes.shape[1],
            settings=resolve_steps_queries(atk.name, atk.steps, atk.queries),
            clean_success=own.clean_success, success=own.success,
            score_clean=own.score_clean, score_adv=own_full.score_adv, transfer=transfer,
            mean_perturbation=sizes.mean(1).tolist(), max_perturbation=sizes.amax(1).tolist(),
            full_budget_success=own_full.success,
            transfer_adversarials="full budget" if self.budget_bound else "minimal (the "
            "attack minimises the perturbation; each budget clips it)",
            surrogates=list(atk.surrogates),
            queries_mean=float(torch.cat(queries).mean()) if queries else None,
            examples=examples, seconds=sum(float(p["seconds"]) for p in parts))

    def _labels(self) -> list[str]:
        return [self.atk.threat.format_epsilon(e) for e in self.atk.epsilons]

    def _examples(self, x: torch.Tensor, adv: torch.Tensor, own: ModelOutcome) -> str:
        what = "distance" if self.goal in VERIFICATION_GOALS else "p(class)"
        captions = [f"{what}: {own.score_clean[i]:.3f} -> {own.score_adv[-1][i]:.3f}"
                    for i in range(len(x))]
        rel = f"examples/{self.key}.png"
        title = (f"{self.atk.name.upper()} {self.atk.norm} {self.goal}, eps="
                 f"{self._labels()[-1]} (full budget)")
        save_example_grid(x, adv, captions, self.out_dir / rel, title=title)
        return rel

    def _nothing_to_attack(self) -> AttackUnit:
        """A unit without samples (the victim decides none correctly): zero trials, said so."""
        atk, exp = self.atk, self.exp
        none = [Rate(0, 0) for _ in atk.epsilons]
        empty = ModelOutcome(Rate(0, 0), none, [], [[] for _ in atk.epsilons])
        return AttackUnit(
            key=self.key.removeprefix(f"attack-{exp.victim}-"), attack=atk.name,
            kind=self.kind, norm=atk.norm, goal=self.goal, victim=exp.victim,
            epsilons=list(atk.epsilons), epsilon_labels=self._labels(), n=0,
            settings=resolve_steps_queries(atk.name, atk.steps, atk.queries),
            clean_success=Rate(0, 0), success=none, score_clean=[],
            score_adv=empty.score_adv, transfer={m: empty for m in exp.models if m != exp.victim},
            mean_perturbation=[0.0] * len(none), max_perturbation=[0.0] * len(none),
            full_budget_success=none, transfer_adversarials="none",
            notes=[f"no sample the victim decides correctly for {self.goal}: nothing attacked"],
            surrogates=list(atk.surrogates))
