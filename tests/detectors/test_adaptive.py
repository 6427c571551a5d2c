"""Adaptive attacks against detectors: the joint criterion and its effect."""

from __future__ import annotations

import torch

from facerobust.attacks.criteria import Misclassification, TargetedMisclassification
from facerobust.attacks.registry import build_attack
from facerobust.detectors import build_detector
from facerobust.detectors.adaptive import EvadeDetector, GuardedModel
from tests.detectors.conftest import IDENTITIES, Task


def test_evade_detector_needs_the_goal_and_a_low_score() -> None:
    crit = EvadeDetector(Misclassification(torch.tensor([0, 0, 0])), threshold=1.0)
    logits = torch.tensor([[0.0, 5.0], [0.0, 5.0], [5.0, 0.0]])
    scores = torch.tensor([[0.5], [2.0], [0.5]])
    out = torch.cat([logits, scores], dim=1)
    assert crit.is_adversarial(out).tolist() == [True, False, False]
    assert ((crit.margin(out) > 0) == crit.is_adversarial(out)).all()
    assert crit.loss(out)[1] < crit.goal.loss(logits)[1]  # the high score is penalised
    assert len(crit.subset(torch.tensor([0, 2]))) == 2


def test_guarded_model_appends_the_score_in_one_pass(task: Task) -> None:
    det = build_detector("gallery", task.model)
    det.enroll(task.gallery, task.gallery_labels).fit(task.gallery)
    out = GuardedModel(task.model, det)(task.clean[:3])
    assert out.shape == (3, IDENTITIES + 1)
    torch.testing.assert_close(out[:, :-1], task.model(task.clean[:3]))
    torch.testing.assert_close(out[:, -1], torch.as_tensor(det.score(task.clean[:3]),
                                                           dtype=out.dtype))


def test_adaptive_attack_evades_the_detector_more_often_than_the_naive_one(task: Task) -> None:
    det = build_detector("gallery", task.model)
    det.enroll(task.gallery, task.gallery_labels).fit(task.gallery)
    threshold = det.calibrate(task.clean, fpr=0.1)
    x, targets = task.clean[:12], (task.labels[:12] + 1) % IDENTITIES
    attack = build_attack("pgd", "linf", steps=50)
    eps = [32 / 255]
    naive = attack(task.model, x, TargetedMisclassification(targets), epsilons=eps,
                   generator=torch.Generator().manual_seed(0)).clipped[0]
    crit = EvadeDetector(TargetedMisclassification(targets), threshold,
                         scale=det.score_scale, weight=10.0)
    adaptive = attack(GuardedModel(task.model, det), x, crit, epsilons=eps,
                      generator=torch.Generator().manual_seed(0)).clipped[0]

    def evades(adv: torch.Tensor) -> int:
        fooled = task.model(adv).argmax(1) == targets
        return int((fooled & torch.as_tensor(det.score(adv) <= threshold)).sum())

    assert (adaptive - x).abs().max() <= 32 / 255 + 1e-6
    assert evades(adaptive) > evades(naive)
