"""Adversarial attacks on face models: goals as criteria, batched attacks, minimal-eps search.

>>> import torch
>>> from facerobust.attacks import LINF, PGD, Dodging, PGDOptions
>>> eps = LINF.parse_epsilons("1/255,2/255,4/255")
>>> attack = PGD(LINF, PGDOptions(steps=10))
>>> result = attack(net, probes, Dodging.for_model(net, refs), epsilons=eps,
...                 generator=torch.Generator().manual_seed(0))       # doctest: +SKIP
>>> result.success_rate()                                             # doctest: +SKIP

Each attack module documents its paper and an example.
"""

from __future__ import annotations

from facerobust.attacks.base import (
    Attack,
    AttackOptions,
    AttackResult,
    FixedEpsilonAttack,
    MinimizationAttack,
    Minimized,
    clip_perturbation,
    flat_norm,
    project,
)
from facerobust.attacks.boosting import BoostedFGSM, BoostOptions
from facerobust.attacks.criteria import (
    Criterion,
    Dodging,
    Impersonation,
    Misclassification,
    TargetedMisclassification,
)
from facerobust.attacks.cw import CarliniWagnerL2, CWOptions
from facerobust.attacks.deepfool import DeepFool, DeepFoolOptions
from facerobust.attacks.epsilons import parse_epsilon, parse_epsilons
from facerobust.attacks.fgsm import FGM, FGSM, FGMOptions
from facerobust.attacks.hopskipjump import HopSkipJump, HSJOptions
from facerobust.attacks.mifgsm import MIFGSM, MIFGSMOptions
from facerobust.attacks.minimal import (
    PLAIN_BISECTION,
    MinimalEpsilonResult,
    SearchOptions,
    minimal_epsilon,
    robfr_search,
)
from facerobust.attacks.pgd import BIM, PGD, BIMOptions, PGDOptions
from facerobust.attacks.square import SquareAttack, SquareOptions
from facerobust.attacks.threat import (
    L2,
    LINF,
    L2Ball,
    LinfBall,
    Threat,
    format_epsilon,
    threat_for,
)

__all__ = [
    "BIM",
    "L2",
    "LINF",
    "PLAIN_BISECTION",
    "AttackOptions",
    "BIMOptions",
    "BoostOptions",
    "BoostedFGSM",
    "CWOptions",
    "DeepFoolOptions",
    "FGMOptions",
    "HSJOptions",
    "L2Ball",
    "LinfBall",
    "MIFGSMOptions",
    "PGDOptions",
    "SearchOptions",
    "SquareOptions",
    "Threat",
    "threat_for",
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
    "Minimized",
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
