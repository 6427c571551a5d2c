"""Attack, minimal-perturbation and defense units of an audit."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from facerobust.eval.audit_data import spread
from facerobust.eval.audit_steps import (
    Context,
    _criterion,
    _probe_rows,
    _verification_sample,
    embeddings,
    forward_batched,
    identification_model,
    make_attack,
)
from facerobust.eval.config import VERIFICATION_GOALS, AttackConfig, DefenseConfig
from facerobust.eval.examples import save_example_grid

EXAMPLE_ROWS = 4


def _targets_for(labels: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
    """A different identity for each probe (seeded)."""
    rng = np.random.default_rng(seed)
    return (labels + 1 + rng.integers(0, n_classes - 1, size=len(labels))) % n_classes


def _setup_goal(ctx: Context, goal: str, n: int, seed: int
                ) -> tuple[torch.Tensor, dict[str, Any], np.ndarray]:
    """Probe chips and, per model, (model to attack/score, criterion target) for ``goal``."""
    if goal in VERIFICATION_GOALS:
        rows = _verification_sample(ctx, goal, n)
        x = ctx.chips.chips[torch.as_tensor(ctx.pairs.a[rows])]
        refs = {name: (model, embeddings(ctx, name)[torch.as_tensor(ctx.pairs.b[rows])])
                for name, model in ctx.models.items()}
        return x, refs, rows
    probe_rows, labels = _probe_rows(ctx)
    victim = identification_model(ctx, ctx.cfg.models.victim)
    emb = embeddings(ctx, ctx.cfg.models.victim)[torch.as_tensor(probe_rows)]
    correct = np.flatnonzero(victim.head(emb).argmax(1).numpy() == labels)
    pick = spread(correct, n)
    chips_rows, labels = probe_rows[pick], labels[pick]
    if goal == "targeted":
        labels = _targets_for(labels, len(ctx.split.names), seed)
    target = torch.as_tensor(labels)
    refs = {name: (identification_model(ctx, name), target) for name in ctx.models}
    return ctx.chips.chips[torch.as_tensor(chips_rows)], refs, pick


def _score(model: nn.Module, goal: str, x: torch.Tensor, ref: torch.Tensor, batch: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Success mask and a per-sample score (distance, or target/true-class logit margin)."""
    out = forward_batched(model, x, batch)
    success = _criterion(goal, model, ref).is_adversarial(out).numpy()
    if goal in VERIFICATION_GOALS:
        score = model.distance(out, ref).numpy()
    else:
        score = out.softmax(1).gather(1, ref[:, None])[:, 0].numpy()
    return success, score


def attack_unit(ctx: Context, atk: AttackConfig, goal: str, key: str, seed: int
                ) -> dict[str, Any]:
    victim_name = ctx.cfg.models.victim
    batch = ctx.cfg.run.batch_size
    x, refs, _ = _setup_goal(ctx, goal, ctx.cfg.data.attack_pairs if goal in VERIFICATION_GOALS
                             else ctx.cfg.identification.probes, seed)
    if len(x) == 0:
        raise ValueError(f"{key}: no sample the victim handles correctly to attack")
    victim, ref = refs[victim_name]
    attack = make_attack(atk.name, norm=atk.norm, steps=atk.steps, queries=atk.queries)
    gen = torch.Generator().manual_seed(seed)
    tic = time.perf_counter()
    advs, queries = [], []
    for i in range(0, len(x), batch):
        crit = _criterion(goal, victim, ref[i:i + batch])
        res = attack(victim, x[i:i + batch], crit, epsilons=list(atk.epsilons), generator=gen)
        advs.append(torch.stack(res.clipped))
        if res.queries is not None:
            queries.append(res.queries.float())
    seconds = time.perf_counter() - tic
    adv = torch.cat(advs, dim=1)  # (n_eps, N, 3, H, W)
    out: dict[str, Any] = {
        "key": key.removeprefix(f"attack-{victim_name}-"), "attack": atk.name, "norm": atk.norm,
        "goal": goal, "victim": victim_name, "epsilons": list(atk.epsilons), "n": len(x),
        "steps": atk.steps, "seconds": seconds,
        "queries_mean": float(torch.cat(queries).mean()) if queries else None,
        "transfer": {},
    }
    for name, (model, target) in refs.items():
        clean_success, clean_score = _score(model, goal, x, target, batch)
        rows = [_score(model, goal, adv[e], target, batch) for e in range(len(atk.epsilons))]
        entry = {"clean_success": float(clean_success.mean()),
                 "success": [float(s.mean()) for s, _ in rows],
                 "score_clean": clean_score.tolist(),
                 "score_adv": [sc.tolist() for _, sc in rows]}
        if name == victim_name:
            out.update(entry)
        else:
            out["transfer"][name] = entry
    out["examples"] = _examples(ctx, key, x, adv[-1], out, goal)
    return out


def _examples(ctx: Context, key: str, x: torch.Tensor, adv: torch.Tensor, out: dict[str, Any],
              goal: str) -> str:
    rows = min(EXAMPLE_ROWS, len(x))
    what = "distance" if goal in VERIFICATION_GOALS else "p(class)"
    captions = [f"{what}: {out['score_clean'][i]:.3f} -> {out['score_adv'][-1][i]:.3f}"
                for i in range(rows)]
    rel = f"examples/{key}.png"
    eps = out["epsilons"][-1]
    save_example_grid(x[:rows], adv[:rows], captions, ctx.out / rel,
                      title=f"{out['attack'].upper()} {out['norm']} {goal}, eps={eps * 255:.3g}/255"
                      if out["norm"] == "linf" else f"{out['attack']} {goal}, eps={eps:.3g}")
    return rel


def minimal_unit(ctx: Context, seed: int) -> dict[str, Any]:
    """Smallest successful budget per sample on the victim (RobFR's headline metric)."""
    from facerobust.attacks.minimal import minimal_epsilon

    m = ctx.cfg.minimal
    x, refs, _ = _setup_goal(ctx, m.goal, m.samples, seed)
    victim, ref = refs[ctx.cfg.models.victim]
    attack = make_attack(m.attack, norm=m.norm, steps=m.steps, queries=1000)
    result = minimal_epsilon(victim, x, _criterion(m.goal, victim, ref), attack=attack,
                             max_epsilon=m.max_epsilon,
                             generator=torch.Generator().manual_seed(seed))
    per_sample = [None if not np.isfinite(e) else float(e) for e in result.epsilons.tolist()]
    found = [e for e in per_sample if e is not None]
    return {"attack": m.attack, "norm": m.norm, "goal": m.goal, "n": len(x),
            "max_epsilon": m.max_epsilon, "per_sample": per_sample,
            "found_rate": len(found) / max(1, len(per_sample)),
            "median": float(np.median(found)) if len(found) * 2 >= len(per_sample) else None,
            "passes": int(result.passes)}


def defense_unit(ctx: Context, dcfg: DefenseConfig, seed: int) -> dict[str, Any]:
    """One defense judged under the naive and the adaptive (BPDA + EOT) attack."""
    from facerobust.defenses import parse_defense
    from facerobust.defenses.evaluate import evaluate_defense

    victim = ctx.models[ctx.cfg.models.victim]
    pairs, chips = ctx.pairs, ctx.chips.chips
    result = evaluate_defense(
        victim, parse_defense(dcfg.spec), chips[torch.as_tensor(pairs.a)],
        chips[torch.as_tensor(pairs.b)], torch.as_tensor(pairs.same),
        attack=make_attack(dcfg.attack, norm=dcfg.norm, steps=dcfg.steps, queries=1000),
        epsilons=list(dcfg.epsilons), goal=dcfg.goal, eot_samples=dcfg.eot,
        n_attack=dcfg.samples, batch_size=ctx.cfg.run.batch_size, seed=seed,
        progress=ctx.progress)
    raw = result.to_dict()
    eps = [float(e) for e in dcfg.epsilons]

    def column(table: dict[str, float] | None) -> list[float] | None:
        return None if table is None else [table[repr(e)] for e in eps]

    masking = raw["masking"] or {}
    flags = [name.replace("_", " ") for name, value in masking.items()
             if isinstance(value, bool) and value]
    return {
        "name": dcfg.spec, "slug": "".join(c if c.isalnum() else "-" for c in dcfg.spec),
        "goal": dcfg.goal, "attack": dcfg.attack, "norm": dcfg.norm, "epsilons": eps,
        "n": raw["n_attacked"], "undefended": column(raw["undefended"]),
        "naive": column(raw["naive"]), "adaptive": column(raw["adaptive"]),
        "direct": column(raw["direct"]), "adaptive_mode": raw["adaptive_mode"],
        "clean": {"accuracy": raw["clean_accuracy"], "tar_at_far": raw["tar_at_far"],
                  "accuracy_undefended": raw["clean_accuracy_undefended"],
                  "tar_at_far_undefended": raw["tar_at_far_undefended"]},
        "ms_per_image": raw["ms_per_image"], "masking": masking, "flags": flags,
        "notes": raw["notes"],
    }
