"""The adversarial data set of a detector study, built once per settings and cached.

Correctly identified probes of the identification task are split by image into train (40%),
validation (30%) and test (30%), and, for the held-out-identity protocol, by identity (half the
identities for train/validation, the other half's probes for test); every configured attack
(BIM, CW-L2, MI-FGSM) is run on each of them for each goal (untargeted, targeted) against the
victim's identification model. Only
successful adversarials enter the set (an attack that failed left nothing to detect); their
count per group is kept, with the attack success rate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from facerobust.attacks.registry import build_attack, full_budget
from facerobust.attacks.threat import L2, LINF
from facerobust.core.stats import Rate
from facerobust.eval.detector_config import DetectorConfig
from facerobust.eval.experiment import Experiment
from facerobust.eval.results_detection import DetectionData
from facerobust.eval.tasks import attack_in_batches, make_criterion, rows_for

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


def _split_rows(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Held-out probes: train / val / test by image (40/30/30). Held-out identities: half the
    identities for id-train / id-val (60/40 of their probes), the other half's probes id-test."""
    rng = np.random.default_rng(seed)
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


def build_detection_set(exp: Experiment, dcfg: DetectorConfig, seed: int) -> DetectionSet:
    """Probes, splits and adversarials for ``dcfg`` (from the run store when computed before)."""
    if exp.split is None:
        raise ValueError("detectors need [identification] enabled")
    fp = exp.fingerprint("detection-data", dcfg.data_settings())
    key = f"detection-data-{fp}"
    model = exp.identification_model(exp.victim)
    untargeted = exp.goal_setup("untargeted", dcfg.samples, seed)
    targeted = exp.goal_setup("targeted", dcfg.samples, seed)
    x, labels = untargeted.x, untargeted.refs[exp.victim][1]
    targets = targeted.refs[exp.victim][1]
    if len(x) < 10:
        raise ValueError(f"detectors: only {len(x)} probes are identified correctly; need >= 10 "
                         "(raise identification.identities / images_per_identity)")
    parts = _split_rows(labels.numpy(), seed)
    saved = exp.store.load_tensors(key, fp) if exp.store is not None else None
    if saved is None:
        saved = _attack_all(exp, model, dcfg, x, labels, targets, seed)
        if exp.store is not None:
            exp.store.save_tensors(key, fp, saved)
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
        adversarial=adversarial, groups=groups, summary=summary)


def _attack_all(exp: Experiment, model: torch.nn.Module, dcfg: DetectorConfig,
                x: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor, seed: int
                ) -> dict[str, Any]:
    advs, sources, groups, names, found, tried = [], [], [], [], [], []
    jobs = [(a, g) for a in dcfg.attacks for g in dcfg.goals]
    for name, goal in tqdm(jobs, desc="detector data: attacks", disable=not exp.progress):
        attack, eps = _attack(name, dcfg)
        ref = labels if goal == "untargeted" else targets
        adv, success, _ = attack_in_batches(
            lambda rows, a=attack: a, model, x,
            lambda rows, r=ref, g=goal: make_criterion(g, model, r[rows]), eps,
            batch_size=exp.cfg.run.batch_size, generator=torch.Generator().manual_seed(seed))
        ok = success[0].cpu()
        group = f"{name}/{goal}"
        log.info("detector data: %s found %d/%d adversarials", group, int(ok.sum()), len(ok))
        advs.append(adv[0][ok])
        sources.append(torch.nonzero(ok)[:, 0])
        groups += [group] * int(ok.sum())
        names.append(group)
        found.append(int(ok.sum()))
        tried.append(len(ok))
    return {"adv": torch.cat(advs), "source": torch.cat(sources), "groups": groups,
            "group_names": names, "found": torch.tensor(found), "tried": torch.tensor(tried)}
