"""Transfer-boosting attacks (DI, TI, NI, MI-DI-TI): budgets, full-budget iterates, tricks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from facerobust.attacks import Misclassification, flat_norm
from facerobust.attacks.boosting import BoostedFGSM, diverse, gaussian_kernel
from facerobust.attacks.registry import build_attack

NAMES = ("difgsm", "tifgsm", "nifgsm", "mditifgsm")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_within_budget_and_success_rises(name: str, norm: str, classifier: nn.Module,
                                         clean_batch) -> None:
    x, y = clean_batch.x[:24], clean_batch.y[:24]
    eps = [2 / 255, 16 / 255] if norm == "linf" else [0.1, 2.0]
    attack = build_attack(name, norm, steps=5)
    res = attack(classifier, x, Misclassification(y), epsilons=eps,
                 generator=torch.Generator().manual_seed(0))
    for e, adv in zip(eps, res.clipped, strict=True):
        assert (flat_norm(adv - x, norm) <= e + 1e-5).all()
        assert adv.min() >= 0 and adv.max() <= 1
    assert res.success[1].sum() >= res.success[0].sum() and res.success[1].float().mean() > 0.3


def test_full_budget_linf_uses_the_whole_budget(classifier: nn.Module, clean_batch) -> None:
    x, y = clean_batch.x[:8], clean_batch.y[:8]
    res = BoostedFGSM(steps=4)(classifier, x, Misclassification(y), epsilons=[8 / 255])
    sizes = flat_norm(res.clipped[0] - x, "linf")
    assert torch.allclose(sizes, torch.full_like(sizes, 8 / 255), atol=1e-6)
    with torch.no_grad():  # success is judged on the returned iterate
        assert torch.equal(Misclassification(y).is_adversarial(classifier(res.clipped[0])),
                           res.success[0])


def test_tricks_change_the_gradient_and_are_seeded(classifier: nn.Module, clean_batch) -> None:
    x, y = clean_batch.x[:8], clean_batch.y[:8]
    crit = Misclassification(y)

    def run(name: str, seed: int) -> torch.Tensor:
        return build_attack(name, "linf", steps=3)(
            classifier, x, crit, epsilons=[8 / 255],
            generator=torch.Generator().manual_seed(seed)).clipped[0]

    plain = build_attack("mifgsm", "linf", steps=3)(classifier, x, crit,
                                                        epsilons=[8 / 255]).clipped[0]
    assert not torch.equal(run("tifgsm", 0), plain)
    assert torch.equal(run("mditifgsm", 0), run("mditifgsm", 0))
    k = gaussian_kernel(7)
    assert k.shape == (7, 7) and abs(float(k.sum()) - 1) < 1e-6 and k[3, 3] == k.max()
    img = torch.rand(2, 3, 32, 32)
    out = diverse(img, 1.0, torch.Generator().manual_seed(1))
    assert out.shape == img.shape and not torch.equal(out, img)
    assert torch.equal(diverse(img, 0.0, None), img)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"diversity": 1.5}, "diversity must be a probability"),
    ({"ti_kernel": 4}, "ti_kernel must be 0"),
    ({"steps": 0}, "steps must be an integer >= 1"),
])
def test_bad_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BoostedFGSM(**kwargs)
