from __future__ import annotations

import math

import torch
from torch import nn

from facerobust.attacks import (
    FGSM,
    PGD,
    PLAIN_BISECTION,
    DeepFool,
    Misclassification,
    flat_norm,
    minimal_epsilon,
    robfr_search,
)

from .conftest import Synthetic


def test_minimal_epsilon_is_valid_and_cheaper_than_robfr(
    classifier: nn.Module, clean_batch: Synthetic
) -> None:
    x, y = clean_batch.x[:24], clean_batch.y[:24]
    crit = Misclassification(y)
    top = 16 / 255
    ours = minimal_epsilon(classifier, x, crit, attack=PGD(steps=5, random_start=False),
                           max_epsilon=top, search=PLAIN_BISECTION)
    base = robfr_search(classifier, x, crit,
                        attack=PGD(steps=5, random_start=False, early_stop=False),
                        max_epsilon=top)
    fin = torch.isfinite(ours.epsilons)
    assert fin.float().mean() > 0.5
    # each reported budget has an adversarial within it
    sizes = flat_norm(ours.adversarials - x, "linf").cpu()
    assert (sizes[fin] <= ours.epsilons[fin] + 1e-6).all()
    with torch.no_grad():
        assert crit.is_adversarial(classifier(ours.adversarials))[fin.to(x.device)].all()
    # just below the found budget the same attack fails (resolution = top / 5120)
    below = (ours.epsilons[fin] - 2 * top / 5120).clamp(min=0)
    _, ok = PGD(steps=5, random_start=False).perturb(
        classifier, x[fin], crit.subset(fin.nonzero()[:, 0]), below)
    assert ok.float().mean() <= 0.2
    assert abs(ours.median() - base.median()) <= top / 50
    assert ours.passes < base.passes
    summary = ours.to_dict()
    assert summary["median"] == ours.median() and len(summary["per_sample"]) == 24
    assert ours.quantiles()["q50"] == ours.median()


def test_minimal_epsilon_marks_failures_inf(classifier: nn.Module, clean_batch: Synthetic) -> None:
    x, y = clean_batch.x[:8], clean_batch.y[:8]
    res = minimal_epsilon(classifier, x, Misclassification(y), attack=FGSM(),
                          max_epsilon=0.5 / 255)
    assert torch.isinf(res.epsilons).all() and math.isinf(res.median())


def test_minimal_epsilon_with_minimisation_attack(
    classifier: nn.Module, clean_batch: Synthetic
) -> None:
    x, y = clean_batch.x[:8], clean_batch.y[:8]
    res = minimal_epsilon(classifier, x, Misclassification(y), attack=DeepFool(steps=30),
                          max_epsilon=10.0)
    assert res.method == "minimisation" and torch.isfinite(res.epsilons).all()
    assert torch.allclose(res.epsilons, flat_norm(res.adversarials - x, "l2").cpu())


def test_default_search_is_warm_cheaper_and_no_larger_than_robfr(
    classifier: nn.Module, clean_batch: Synthetic
) -> None:
    x, y = clean_batch.x[:16], clean_batch.y[:16]
    crit = Misclassification(y)
    attack = PGD(steps=5, random_start=False)
    cold = minimal_epsilon(classifier, x, crit, attack=attack, max_epsilon=16 / 255,
                           search=PLAIN_BISECTION)
    warm = minimal_epsilon(classifier, x, crit, attack=attack, max_epsilon=16 / 255)
    base = robfr_search(classifier, x, crit,
                        attack=PGD(steps=5, random_start=False, early_stop=False),
                        max_epsilon=16 / 255)
    assert warm.passes < cold.passes < base.passes
    assert warm.median() <= base.median()
    fin = torch.isfinite(warm.epsilons)
    assert torch.equal(fin, torch.isfinite(cold.epsilons))
    sizes = flat_norm(warm.adversarials - x, "linf").cpu()
    assert (sizes[fin] <= warm.epsilons[fin] + 1e-6).all()
    with torch.no_grad():
        assert crit.is_adversarial(classifier(warm.adversarials))[fin].all()


def test_pgd_reports_the_margin_of_the_returned_point_without_extra_passes(
    classifier: nn.Module, clean_batch: Synthetic
) -> None:
    from facerobust.attacks.base import Tally

    x, y = clean_batch.x[:8], clean_batch.y[:8]
    crit = Misclassification(y)
    eps = torch.full((8,), 4 / 255)
    plain, with_m = Tally(8, x.device), Tally(8, x.device)
    margins = torch.zeros(8)
    attack = PGD(steps=5, random_start=False)
    a0, ok0 = attack.perturb(classifier, x, crit, eps, tally=plain)
    a, ok = attack.perturb(classifier, x, crit, eps, tally=with_m, margins=margins)
    assert torch.equal(ok, ok0) and torch.equal(a, a0) and with_m.passes == plain.passes
    with torch.no_grad():
        torch.testing.assert_close(margins, crit.margin(classifier(a)), atol=1e-5, rtol=1e-4)
    assert torch.equal(margins > 0, ok)
