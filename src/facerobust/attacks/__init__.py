"""Adversarial attacks on face models: goals as criteria, batched attacks, minimal-eps search.

>>> import torch
>>> from facerobust.attacks import PGD, Dodging, parse_epsilons
>>> eps = parse_epsilons("1/255,2/255,4/255")
>>> attack = PGD(norm="linf", steps=10)
>>> result = attack(net, probes, Dodging.for_model(net, refs), epsilons=eps,
...                 generator=torch.Generator().manual_seed(0))       # doctest: +SKIP
>>> result.success_rate()                                             # doctest: +SKIP

Each attack module documents its paper and an example.
"""

from __future__ import annotations

from facerobust.attacks.base import (
    Attack,
    AttackResult,
    FixedEpsilonAttack,
    MinimizationAttack,
    clip_perturbation,
    flat_norm,
    project,
)
from facerobust.attacks.criteria import (
    Criterion,
    Dodging,
    Impersonation,
    Misclassification,
    TargetedMisclassification,
)
from facerobust.attacks.cw import CarliniWagnerL2
from facerobust.attacks.deepfool import DeepFool
from facerobust.attacks.epsilons import format_epsilon, parse_epsilon, parse_epsilons
from facerobust.attacks.fgsm import FGM, FGSM
from facerobust.attacks.hopskipjump import HopSkipJump
from facerobust.attacks.mifgsm import MIFGSM
from facerobust.attacks.minimal import MinimalEpsilonResult, minimal_epsilon, robfr_search
from facerobust.attacks.pgd import BIM, PGD
from facerobust.attacks.square import SquareAttack

__all__ = [
    "BIM",
    "FGM",
    "FGSM",
    "MIFGSM",
    "PGD",
    "Attack",
    "AttackResult",
    "CarliniWagnerL2",
    "Criterion",
    "DeepFool",
    "Dodging",
    "FixedEpsilonAttack",
    "HopSkipJump",
    "Impersonation",
    "MinimalEpsilonResult",
    "MinimizationAttack",
    "Misclassification",
    "SquareAttack",
    "TargetedMisclassification",
    "clip_perturbation",
    "flat_norm",
    "format_epsilon",
    "minimal_epsilon",
    "parse_epsilon",
    "parse_epsilons",
    "project",
    "robfr_search",
]
