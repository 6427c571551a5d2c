"""The adversarial data set of a detector study, built once per settings and cached.

Correctly identified probes of the identification task are split by image into train (40%),
validation (30%) and test (30%), and, for the held-out-identity protocol, by identity (half the
identities for train/validation, the other half's probes for test); every configured attack
(BIM, CW-L2, MI-FGSM) is run on each of them for each goal (untargeted, targeted) against the
victim's identification model. Only
successful adversarials enter the set (an attack that failed left nothing to detect); their
count per group is kept, with the attack success rate. The attacks run as shards of the
probes (:class:`DetectionShards`), once for every detector with the same data settings: the
Ray executor computes them before the detector units and hands the set to each.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from facerobust.attacks.registry import build_attack, full_budget
from facerobust.attacks.threat import L2, LINF
from facerobust.core.embedding import model_device
from facerobust.core.precision import crafting
from facerobust.core.stats import Rate
from facerobust.eval.detector_config import DetectorConfig
from facerobust.eval.experiment import Experiment, GoalRows
from facerobust.eval.results_detection import DetectionData
from facerobust.eval.shards import Part, ShardedUnit, SharedData, shard_bounds, shard_seed, sharding
from facerobust.eval.tasks import attack_in_batches, make_criterion, rows_for, score_goal

log = logging.getLogger("facerobust.audit")
SPLITS = ("train", "val", "test")


@dataclass
class DetectionSet:
    gallery: torch.Tensor
    gallery_labels: torch.Tensor
    clean: dict[str, torch.Tensor]  # split -> chips
    labels: dict[str, torch.Tensor]  # split -> true identity
    targets: dict[str, torch.Tensor]  # split -> target identity of the targeted goal
    adversarial: dict[str, torch.Tensor]  # split -> successful adversarial chips
    groups: dict[str, np.ndarray]  # split -> "<attack>/<goal>" of each adversarial row
    summary: DetectionData
    cross_identity: bool = False  # train/val probes are other people's than test's


def split_rows(labels: np.ndarray, seed: int, fit_labels: frozenset[int] = frozenset()
                ) -> dict[str, np.ndarray]:
    """Held-out probes: train / val / test by image (40/30/30). Held-out identities: half the
    identities for id-train / id-val (60/40 of their probes), the other half's probes id-test.
    With ``fit_labels`` (another dataset's people): their probes train / val (60/40), every
    other probe test, and no id-* split (every judged identity is held out)."""
    rng = np.random.default_rng(seed)
    if fit_labels:
        fit = rng.permutation(np.flatnonzero(np.isin(labels, sorted(fit_labels))))
        cut = int(round(0.6 * len(fit)))
        test = np.flatnonzero(~np.isin(labels, sorted(fit_labels)))
        return {"train": np.sort(fit[:cut]), "val": np.sort(fit[cut:]), "test": test}
    n = len(labels)
    order = rng.permutation(n)
    a, b = int(round(0.4 * n)), int(round(0.7 * n))
    parts = {"train": order[:a], "val": order[a:b], "test": order[b:]}
    people = rng.permutation(np.unique(labels))
    seen = np.flatnonzero(np.isin(labels, people[: (len(people) + 1) // 2]))
    seen = rng.permutation(seen)
    cut = int(round(0.6 * len(seen)))
    parts.update({"id-train": seen[:cut], "id-val": seen[cut:],
                  "id-test": np.flatnonzero(~np.isin(labels, people[: (len(people) + 1) // 2]))})
    return {k: np.sort(v) for k, v in parts.items()}


def _attack(name: str, dcfg: DetectorConfig) -> tuple[Any, list[float]]:
    if name == "cw":
        return build_attack("cw", L2, steps=dcfg.cw_steps), [float("inf")]
    attack = build_attack(name, LINF, steps=dcfg.steps)
    return (full_budget(attack) if dcfg.full_budget else attack), [dcfg.epsilon]


def detection_data(exp: Experiment, dcfg: DetectorConfig) -> SharedData:
    """The adversarial set of ``dcfg`` as data shared by every detector with the same data
    settings: its run-store key, fingerprint and shards (probes split by ``[run] shard_size``,
    each attacked by every configured attack and goal with its own seed)."""
    parts = sharding(dcfg.samples, exp.cfg.run.shard_size)
    fp = exp.fingerprint("detection-data", dcfg.data_settings(), *parts)
    shards = DetectionShards(exp, dcfg, exp.cfg.run.seed)
    return SharedData(f"detection-data-{fp}", fp,
                      ShardedUnit(shards.bounds, shards.run, shards.merge))


def build_detection_set(exp: Experiment, dcfg: DetectorConfig, seed: int) -> DetectionSet:
    """Probes, splits and adversarials for ``dcfg``: the adversarials handed over by the
    executor (``exp.shared``), saved in the run store, or computed here."""
    if exp.split is None:
        raise ValueError("detectors need [identification] enabled")
    shared = detection_data(exp, dcfg)
    untargeted = exp.goal_setup("untargeted", dcfg.samples, seed)
    targeted = exp.goal_setup("targeted", dcfg.samples, seed)
    x, labels = untargeted.x, untargeted.refs[exp.victim][1]
    targets = targeted.refs[exp.victim][1]
    _check_probes(len(x))
    parts = split_rows(labels.numpy(), seed, exp.fit_labels)
    _check_sides(parts)
    saved = exp.shared.get(shared.key)
    if saved is None:  # kept in memory only without a run store to reload it from
        saved = shared.compute(exp.store)
        if exp.store is None:
            exp.shared[shared.key] = saved
    rows, gallery_labels = rows_for(exp.split.train_paths, exp.split.train_labels,
                                    exp.chips.index)
    adversarial, groups, counts = {}, {}, {}
    for split, idx in parts.items():
        keep = np.isin(saved["source"].numpy(), idx)
        adversarial[split] = saved["adv"][torch.as_tensor(keep)]
        groups[split] = np.asarray(saved["groups"])[keep] if keep.any() else np.array([], str)
        counts[split] = {g: int((groups[split] == g).sum()) for g in saved["group_names"]}
    success = {g: Rate(int(k), int(n)) for g, k, n in
               zip(saved["group_names"], saved["found"].tolist(), saved["tried"].tolist(),
                   strict=True)}
    summary = DetectionData(
        model=exp.victim, n_identities=len(exp.split.names), n_gallery=len(rows),
        n_probes={s: len(i) for s, i in parts.items()}, epsilon=dcfg.epsilon,
        attack_success=success, n_adversarial=counts)
    t = torch.as_tensor
    return DetectionSet(
        gallery=exp.chips.chips[t(rows)], gallery_labels=t(gallery_labels),
        clean={s: x[t(i)] for s, i in parts.items()},
        labels={s: labels[t(i)] for s, i in parts.items()},
        targets={s: targets[t(i)] for s, i in parts.items()},
        adversarial=adversarial, groups=groups, summary=summary,
        cross_identity=bool(exp.fit_labels))


def _check_sides(parts: dict[str, np.ndarray]) -> None:
    empty = [s for s in SPLITS if len(parts[s]) == 0]
    if empty:
        raise ValueError(f"detectors: no correctly identified probe in the {empty[0]} split "
                         "(raise detector.samples or the identification / fit_identities sizes)")


def _check_probes(n: int) -> None:
    if n < 10:
        raise ValueError(f"detectors: only {n} probes are identified correctly; need >= 10 "
                         "(raise identification.identities / images_per_identity)")


class DetectionShards:
    """The attacks of a detector data set over shards of the probes: each shard runs every
    (attack, goal) job on its probes seeded ``shard_seed(seed, index)``; :meth:`merge` orders
    the successful adversarials by job, then by probe, as one pass over all probes would."""

    def __init__(self, exp: Experiment, dcfg: DetectorConfig, seed: int) -> None:
        self.exp, self.dcfg, self.seed = exp, dcfg, seed
        self.jobs = [(a, g) for a in dcfg.attacks for g in dcfg.goals]

    @cached_property
    def samples(self) -> tuple[GoalRows, GoalRows]:
        if self.exp.split is None:
            raise ValueError("detectors need [identification] enabled")
        n = self.dcfg.samples
        return (self.exp.goal_rows("untargeted", n, self.seed),
                self.exp.goal_rows("targeted", n, self.seed))

    def bounds(self) -> list[tuple[int, int]]:
        _check_probes(len(self.samples[0]))
        return shard_bounds(len(self.samples[0]), self.exp.cfg.run.shard_size)

    def run(self, index: int) -> Part:
        lo, hi = self.bounds()[index]
        untargeted, targeted = (rows.take(lo, hi) for rows in self.samples)
        model, labels = untargeted.refs[self.exp.victim]
        targets = targeted.refs[self.exp.victim][1]
        jobs: list[Part] = []
        for name, goal in tqdm(self.jobs, desc="detector data: attacks",
                               disable=not self.exp.progress):
            attack, eps = _attack(name, self.dcfg)
            ref = labels if goal == "untargeted" else targets
            # crafted in bfloat16 under [run] precision = "bf16" (attacks whose stopping
            # verdicts are float32 forwards); every kept adversarial is re-judged in float32
            low = self.exp.cfg.run.precision if attack.float32_verdicts else "fp32"
            with crafting(low, model_device(model)):
                adv, success, _ = attack_in_batches(
                    lambda rows, a=attack: a, model, untargeted.x,
                    lambda rows, r=ref, g=goal: make_criterion(g, model, r[rows]), eps,
                    batch_size=self.exp.cfg.run.batch_size,
                    generator=torch.Generator().manual_seed(shard_seed(self.seed, index)))
            ok = success[0].cpu()
            if low != "fp32":
                ok &= torch.as_tensor(score_goal(model, goal, adv[0], ref,
                                                 self.exp.cfg.run.batch_size)[0])
            jobs.append({"adv": adv[0][ok], "source": torch.nonzero(ok)[:, 0] + lo,
                         "tried": len(ok)})
        return {"jobs": jobs}

    def merge(self, parts: list[Part]) -> Part:
        advs, sources, groups, names, found, tried = [], [], [], [], [], []
        for j, (name, goal) in enumerate(self.jobs):
            group = f"{name}/{goal}"
            ok = [p["jobs"][j] for p in parts]
            count = sum(len(o["source"]) for o in ok)
            log.info("detector data: %s found %d/%d adversarials", group, count,
                     sum(int(o["tried"]) for o in ok))
            advs += [o["adv"] for o in ok]
            sources += [o["source"] for o in ok]
            groups += [group] * count
            names.append(group)
            found.append(count)
            tried.append(sum(int(o["tried"]) for o in ok))
        return {"adv": torch.cat(advs), "source": torch.cat(sources), "groups": groups,
                "group_names": names, "found": torch.tensor(found), "tried": torch.tensor(tried)}
