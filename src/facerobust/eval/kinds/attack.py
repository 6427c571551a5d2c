"""Attack units: one (attack, goal, source) on the victim, sharded, re-scored on every other
model (transfer)."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

from facerobust.attacks.threat import threat_for
from facerobust.eval.attack_unit import AttackShards
from facerobust.eval.config import AuditConfig
from facerobust.eval.experiment import Experiment
from facerobust.eval.results import AttackUnit
from facerobust.eval.results_audit import Results
from facerobust.eval.results_file import Verdict, verdict
from facerobust.eval.shards import ShardedUnit
from facerobust.eval.unit_kind import PlannedUnit, Stored, UnitKind, unit_seed

PHRASES = {"dodging": "evades recognition (dodging)",
           "impersonation": "impersonates an enrolled person",
           "untargeted": "is misidentified (untargeted)",
           "targeted": "is identified as a chosen person"}


# success at a budget: broken within it by the full-strength runs (before: an early-stopped sweep)
SUCCESS_RULE = {"success": "full-strength, broken within the budget"}
# how an attack with float32 verdicts (CW) crafts under bf16 (before: all float32)
LOW_PRECISION_RULE = {"crafting": "bf16 gradients, float32-confirmed best"}


def plan(cfg: AuditConfig, exp: Experiment, out: Path) -> list[PlannedUnit]:
    victim = cfg.models.victim
    units: list[PlannedUnit] = []
    for atk in cfg.attacks:
        for sources in atk.sources(victim, cfg.models.others):
            one = replace(atk, surrogates=sources, all_sources=False)
            for goal in atk.goals:
                key = f"attack-{victim}-{one.key}-{goal}"
                own = {**asdict(one), "goals": None}
                shards = AttackShards(exp, one, goal, key, unit_seed(cfg.run.seed, key), out)
                # "success": how success is read (a bump recomputes units of older versions)
                rules = [SUCCESS_RULE]
                if cfg.run.precision != "fp32" and shards.float32_best:
                    rules.append(LOW_PRECISION_RULE)
                units.append((key, exp.fingerprint("attack", own, goal, *rules),
                              ShardedUnit(shards.bounds, shards.run, shards.merge)))
    return units


def collect(_cfg: AuditConfig, units: Stored) -> list[AttackUnit]:
    return [AttackUnit.from_dict(v, where=k) for k, v in units.items()]


def pick(attacks: list[AttackUnit], goal: str) -> tuple[AttackUnit, int] | None:
    """Most successful attack for ``goal`` at its threat's headline budget (or nearest below;
    Linf 2/255; threats without a headline budget, such as L2, are not quoted)."""
    best = None
    for atk in attacks:
        headline = threat_for(atk.norm).headline_epsilon
        if atk.goal != goal or headline is None or atk.n == 0 or atk.surrogates:
            continue
        idx = [i for i, e in enumerate(atk.epsilons) if e <= headline + 1e-12]
        i = idx[-1] if idx else 0
        if best is None or atk.success[i].rate > best[0].success[best[1]].rate:
            best = (atk, i)
    return best


def _sentences_of(atk: AttackUnit, i: int, goal: str) -> list[str]:
    out = [f"At {atk.epsilon_labels[i]} per pixel, {atk.attack.upper()} {PHRASES[goal]} in "
           f"{atk.success[i].text()} of attempts."]
    if atk.transfer:
        target, row = max(atk.transfer.items(), key=lambda kv: kv[1].success[i].rate)
        out.append(f"The same images fool {target} in {row.success[i].text()}.")
    return out


def sentences(results: Results) -> list[str]:
    out: list[str] = []
    for goal in PHRASES:
        picked = pick(results.attacks, goal)
        if picked is not None:
            out += _sentences_of(*picked, goal)
    return out


def verdicts(results: Results) -> list[Verdict]:
    rows = []
    for atk in results.attacks:
        if atk.n == 0:
            continue
        source = f", crafted on {'+'.join(atk.surrogates)}" if atk.surrogates else ""
        rows.append(verdict(f"{atk.attack.upper()} {atk.norm} {atk.goal} on {atk.victim}"
                            f"{source}", atk.epsilon_labels[-1], atk.success[-1]))
    return rows


ATTACK = UnitKind("attack", "attack-", "attacks", plan, collect, sentences, verdicts)
