from __future__ import annotations

import pytest
import torch
from torch import nn

from facerobust.attacks import (
    BIM,
    FGM,
    FGSM,
    MIFGSM,
    PGD,
    CarliniWagnerL2,
    DeepFool,
    Misclassification,
    flat_norm,
)

from .conftest import Synthetic

LINF = [1 / 255, 4 / 255, 8 / 255, 12 / 255]
L2 = [0.1, 0.4, 0.8, 1.6]

ATTACKS = [
    FGSM(), FGM(), PGD(steps=5), PGD("l2", steps=5), BIM(steps=5),
    MIFGSM(steps=5), MIFGSM("l2", steps=5),
]


def _check_budget(x: torch.Tensor, adv: torch.Tensor, eps: float, norm: str) -> None:
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    assert float(flat_norm(adv - x, norm).max()) <= eps + 1e-6


@pytest.mark.parametrize("attack", ATTACKS, ids=repr)
def test_budget_bounds_and_monotone(
    attack, classifier: nn.Module, clean_batch: Synthetic
) -> None:
    x, y = clean_batch.x[:24], clean_batch.y[:24]
    eps = LINF if attack.norm == "linf" else L2
    res = attack(classifier, x, Misclassification(y), epsilons=eps,
                 generator=torch.Generator().manual_seed(0))
    assert res.success.shape == (len(eps), len(x))
    for e, clipped, ok in zip(eps, res.clipped, res.success, strict=True):
        _check_budget(x, clipped, e, attack.norm)
        with torch.no_grad():
            truth = classifier(clipped).argmax(1) != y
        assert torch.equal(truth, ok)
    rates = res.success_rate()
    assert rates == sorted(rates)
    assert rates[-1] > rates[0]  # the model is breakable at the largest budget


@pytest.mark.parametrize("attack", [CarliniWagnerL2(binary_search_steps=2, steps=20,
                                                    initial_const=1.0),
                                    DeepFool(steps=20), DeepFool("linf", steps=20)], ids=repr)
def test_minimisation_attacks_clip_to_budget(
    attack, classifier: nn.Module, clean_batch: Synthetic
) -> None:
    x, y = clean_batch.x[:16], clean_batch.y[:16]
    eps = [0.5, 1.0, float("inf")] if attack.norm == "l2" else [2 / 255, 8 / 255, float("inf")]
    res = attack(classifier, x, Misclassification(y), epsilons=eps)
    for e, clipped in zip(eps[:-1], res.clipped[:-1], strict=True):
        _check_budget(x, clipped, e, attack.norm)
    assert res.success_rate() == sorted(res.success_rate())
    assert res.success_rate()[-1] >= 0.9


def test_fgsm_sweep_reuses_one_gradient(classifier: nn.Module, clean_batch: Synthetic) -> None:
    x, y = clean_batch.x[:20], clean_batch.y[:20]
    crit = Misclassification(y)
    eps = [i / 255 for i in range(1, 9)]
    res = FGSM()(classifier, x, crit, epsilons=eps)
    calls = {"grad": 0}

    def hook(module: nn.Module, inp: tuple, out: torch.Tensor) -> None:  # noqa: ARG001
        calls["grad"] += int(out.requires_grad)

    h = classifier.register_forward_hook(hook)
    try:
        FGSM()(classifier, x, crit, epsilons=eps)
    finally:
        h.remove()
    assert calls["grad"] == 1  # one gradient for all 8 epsilons
    # each eps: no-grad forward only on samples not yet broken at a smaller eps
    expected = len(x) + sum(int((~res.success[i - 1]).sum()) if i else len(x)
                            for i in range(len(eps)))
    assert res.passes == expected
    # same adversarials as single-eps calls wherever the sample was not broken earlier
    single = FGSM()(classifier, x, crit, epsilons=[eps[3]])
    fresh = ~res.success[2]
    assert torch.equal(single.clipped[0][fresh], res.clipped[3][fresh])


def test_early_stop_saves_passes_and_full_budget_keeps_last_success(
    classifier: nn.Module, clean_batch: Synthetic
) -> None:
    x, y = clean_batch.x[:24], clean_batch.y[:24]
    crit = Misclassification(y)
    g = torch.Generator
    fast = PGD(steps=10, random_start=False)(classifier, x, crit, epsilons=[12 / 255],
                                            generator=g().manual_seed(0))
    full = PGD(steps=10, random_start=False, early_stop=False)(
        classifier, x, crit, epsilons=[12 / 255], generator=g().manual_seed(0))
    assert fast.passes < full.passes <= len(x) * 11
    with torch.no_grad():  # the mask is the returned iterate's, judged as it is
        assert torch.equal(crit.is_adversarial(classifier(full.clipped[0])), full.success[0])
    # same trajectory: success at any iterate either way; only the kept iterate differs
    assert torch.equal(fast.success[0], full.success[0])
    # early stopping keeps the first successful iterate, full budget the last one: larger
    both = full.success[0]
    assert both.any()
    small = flat_norm(fast.clipped[0] - x, "linf")[both]
    large = flat_norm(full.clipped[0] - x, "linf")[both]
    assert large.mean() > small.mean()
    assert (large <= 12 / 255 + 1e-6).all()


def test_determinism_under_seed(classifier: nn.Module, clean_batch: Synthetic) -> None:
    x, y = clean_batch.x[:8], clean_batch.y[:8]
    crit = Misclassification(y)
    attack = PGD(steps=3, early_stop=False)
    a = attack(classifier, x, crit, epsilons=[2 / 255], generator=torch.Generator().manual_seed(7))
    b = attack(classifier, x, crit, epsilons=[2 / 255], generator=torch.Generator().manual_seed(7))
    c = attack(classifier, x, crit, epsilons=[2 / 255], generator=torch.Generator().manual_seed(8))
    assert torch.equal(a.clipped[0], b.clipped[0])
    assert not torch.equal(a.clipped[0], c.clipped[0])


def test_params_frozen_during_attack_and_restored(
    classifier: nn.Module, clean_batch: Synthetic
) -> None:
    seen = []
    h = classifier.register_forward_hook(
        lambda m, i, o: seen.append(any(p.requires_grad for p in m.parameters()))
    )
    try:
        PGD(steps=2)(classifier, clean_batch.x[:4], Misclassification(clean_batch.y[:4]),
                     epsilons=[1 / 255])
    finally:
        h.remove()
    assert seen and not any(seen)
    assert all(p.requires_grad for p in classifier.parameters())
