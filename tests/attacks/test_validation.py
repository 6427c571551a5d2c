from __future__ import annotations

import pytest
import torch
from torch import nn

from facerobust.attacks import (
    FGSM,
    PGD,
    CarliniWagnerL2,
    Dodging,
    HopSkipJump,
    Misclassification,
    SquareAttack,
    minimal_epsilon,
)

from .conftest import Synthetic


def test_bad_epsilons(classifier: nn.Module, clean_batch: Synthetic) -> None:
    x, crit = clean_batch.x[:4], Misclassification(clean_batch.y[:4])
    with pytest.raises(ValueError, match="epsilon must be >= 0, got -0.1"):
        FGSM()(classifier, x, crit, epsilons=[0.1, -0.1])
    with pytest.raises(ValueError, match="epsilons is empty"):
        PGD()(classifier, x, crit, epsilons=[])
    with pytest.raises(ValueError, match="list of numbers, got the scalar"):
        PGD()(classifier, x, crit, epsilons=0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="inf is only allowed for minimisation attacks"):
        PGD()(classifier, x, crit, epsilons=[float("inf")])


def test_bad_inputs(classifier: nn.Module, clean_batch: Synthetic) -> None:
    x, crit = clean_batch.x[:4], Misclassification(clean_batch.y[:4])
    with pytest.raises(ValueError, match=r"inputs must lie in \[0, 1\], got min 0.0001 max 2.0001"):
        FGSM()(classifier, x * 2 + 0.0001, crit, epsilons=[0.1])
    with pytest.raises(ValueError, match=r"shape \(N, C, H, W\), got \(3, 32, 32\)"):
        FGSM()(classifier, x[0], crit, epsilons=[0.1])
    with pytest.raises(ValueError, match="criterion holds 4 samples but x has 3 images"):
        FGSM()(classifier, x[:3], crit, epsilons=[0.1])
    with pytest.raises(ValueError, match="float tensor"):
        FGSM()(classifier, (x * 255).to(torch.uint8), crit, epsilons=[0.1])


def test_criterion_must_fit_model(classifier: nn.Module, clean_batch: Synthetic) -> None:
    x = clean_batch.x[:4]
    with pytest.raises(ValueError, match="does not fit a model with 6 classes"):
        PGD()(classifier, x, Misclassification(torch.tensor([0, 1, 2, 9])), epsilons=[0.1])
    with pytest.raises(ValueError, match="descriptors are 128-d but the model outputs 6-d"):
        FGSM()(classifier, x, Dodging(torch.zeros(4, 128), 0.6), epsilons=[0.1])
    with pytest.raises(ValueError, match="does not fit"):
        CarliniWagnerL2(steps=2)(
            classifier, x, Misclassification(torch.tensor([0, 1, 2, 9])), epsilons=[1.0]
        )


def test_bad_hyperparameters() -> None:
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        PGD(steps=0)
    with pytest.raises(ValueError, match="norm must be 'linf' or 'l2', got 'l1'"):
        PGD("l1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rel_stepsize must be > 0"):
        PGD(rel_stepsize=-1)
    with pytest.raises(ValueError, match="max_queries must be an integer >= 2"):
        SquareAttack(max_queries=1)
    with pytest.raises(ValueError, match="gamma must be > 0"):
        HopSkipJump(gamma=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        CarliniWagnerL2(lr=0)


def test_minimal_epsilon_validation(classifier: nn.Module, clean_batch: Synthetic) -> None:
    x, crit = clean_batch.x[:4], Misclassification(clean_batch.y[:4])
    with pytest.raises(ValueError, match="max_epsilon must be > 0"):
        minimal_epsilon(classifier, x, crit, attack=PGD(), max_epsilon=0)
    with pytest.raises(ValueError, match="attack must be a facerobust Attack"):
        minimal_epsilon(classifier, x, crit, attack="pgd", max_epsilon=0.1)  # type: ignore[arg-type]
