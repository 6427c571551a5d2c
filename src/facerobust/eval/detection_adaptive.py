"""Naive vs adaptive PGD against a model guarded by a fitted, calibrated detector."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from facerobust.attacks.registry import build_attack, full_budget
from facerobust.attacks.threat import LINF
from facerobust.core.stats import Rate
from facerobust.detectors.adaptive import EvadeDetector, GuardedModel
from facerobust.detectors.base import Detector
from facerobust.eval.detection_data import DetectionSet
from facerobust.eval.detector_config import DetectorConfig
from facerobust.eval.results_detection import AdaptiveRow
from facerobust.eval.tasks import attack_in_batches, make_criterion, score_goal


def adaptive_rows(det: Detector, dcfg: DetectorConfig, data: DetectionSet, seed: int
                  ) -> list[AdaptiveRow]:
    n = dcfg.adaptive_samples
    x = data.clean["test"][:n]
    model, threshold = det.model, det.threshold
    if threshold is None or len(x) == 0:
        return []
    eps = list(dcfg.adaptive_epsilons)
    rows = []
    for goal in dcfg.goals:
        ref = (data.labels if goal == "untargeted" else data.targets)["test"][:n]

        def goal_criterion(r: slice, ref: torch.Tensor = ref, goal: str = goal) -> object:
            return make_criterion(goal, model, ref[r])

        naive = _judge(det, goal, _pgd(dcfg, det, model, x, goal_criterion, eps, seed,
                                       full=True), ref)
        # the attacker keeps, per sample, whichever run evades: the hinge runs or the naive one
        adaptive = [evades.copy() for _, evades in naive]
        adaptive_fooled = [fooled.copy() for fooled, _ in naive]
        guarded = GuardedModel(model, det)
        confidence = 0.5 if det.adaptive_kind == "surrogate" else 0.0
        for weight in dcfg.adaptive_weights:
            def evade(r: slice, weight: float = weight, crit: Any = goal_criterion,
                      confidence: float = confidence) -> Any:
                return EvadeDetector(crit(r), float(threshold), scale=det.score_scale,
                                     weight=weight, confidence=confidence)

            judged = _judge(det, goal, _pgd(dcfg, det, guarded, x, evade, eps, seed), ref)
            for i, (fooled, evades) in enumerate(judged):
                adaptive[i] |= evades
                adaptive_fooled[i] |= fooled
        for i, e in enumerate(eps):
            rows.append(AdaptiveRow(
                goal=goal, epsilon=e, epsilon_label=LINF.format_epsilon(e),
                naive_model=Rate.of(naive[i][0]), naive_evades=Rate.of(naive[i][1]),
                adaptive_model=Rate.of(adaptive_fooled[i]), adaptive_evades=Rate.of(adaptive[i])))
    return rows


def _pgd(dcfg: DetectorConfig, det: Detector, model: torch.nn.Module, x: torch.Tensor,
         criterion_for: object, eps: list[float], seed: int, *, full: bool = False
         ) -> torch.Tensor:
    """Adversarials (n_eps, N, ...). The adaptive attack sweeps the budgets keeping each
    sample's first success (which already evades the detector); the naive one (``full``) runs
    every budget at full strength, so its chips are crafted *for* that budget."""
    attack = build_attack("pgd", LINF, steps=dcfg.adaptive_steps)
    if not full:
        adv, _, _ = attack_in_batches(lambda r: attack, model, x, criterion_for, eps,
                                      batch_size=det.batch_size,
                                      generator=torch.Generator().manual_seed(seed))
        return adv
    strong = full_budget(attack)
    return torch.cat([attack_in_batches(lambda r: strong, model, x, criterion_for, [e],
                                        batch_size=det.batch_size,
                                        generator=torch.Generator().manual_seed(seed))[0]
                      for e in eps])


def _judge(det: Detector, goal: str, adv: torch.Tensor, ref: torch.Tensor
           ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per budget: fooled the model (its real decision), and fooled it unflagged."""
    out = []
    for a in adv:
        fooled, _ = score_goal(det.model, goal, a, ref, det.batch_size)
        unflagged = det.score(a) <= float(det.threshold or 0.0)
        out.append((fooled, fooled & unflagged))
    return out
