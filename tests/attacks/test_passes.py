"""Model passes counted by a wrapper model: the cost bounds the attacks document."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from facerobust.attacks import BIM, FGSM, PGD, CarliniWagnerL2, Misclassification

from .conftest import Synthetic


class Counting(nn.Module):
    """The wrapped model, counting images per forward: with a gradient to the input (a
    forward+backward pass) or without (a forward)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.grad = 0
        self.fwd = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            self.grad += len(x)
        else:
            self.fwd += len(x)
        return self.net(x)


@pytest.mark.parametrize(("attack", "budget"), [(PGD, 6 / 255), (BIM, 16 / 255)])
def test_full_budget_costs_steps_passes_plus_one_forward_where_nothing_succeeded(
    attack: type[PGD], budget: float, classifier: nn.Module, clean_batch: Synthetic
) -> None:
    x, y = clean_batch.x[:24], clean_batch.y[:24]
    crit, k, eps = Misclassification(y), 6, [budget]
    opts = {"random_start": False}  # step sizes independent of ``steps``: same trajectory
    model = Counting(classifier)
    res = attack(steps=k, early_stop=False, **opts)(model, x, crit, epsilons=eps)
    # iterates 0..k-1 are judged by the step forwards: early stopping with k-1 steps judges
    # exactly those (the same trajectory), so the rows it breaks need no final forward
    before = attack(steps=k - 1, **opts)(classifier, x, crit, epsilons=eps).success[0]
    assert 0 < int(before.sum()) < len(x)
    assert model.grad == k * len(x)
    assert model.fwd == int((~before).sum())
    assert res.passes == model.grad + model.fwd <= (k + 1) * len(x)
    with torch.no_grad():
        assert torch.equal(crit.is_adversarial(classifier(res.clipped[0])), res.success[0])


def test_full_budget_bound_is_tight_when_nothing_succeeds(
    classifier: nn.Module, clean_batch: Synthetic
) -> None:
    x, y = clean_batch.x[:8], clean_batch.y[:8]
    with torch.no_grad():
        right = classifier(x).argmax(1) == y
    x, y = x[right], y[right]
    model = Counting(classifier)
    res = PGD(steps=4, random_start=False, early_stop=False)(
        model, x, Misclassification(y), epsilons=[0.0])
    assert not res.success.any()
    assert (model.grad, model.fwd) == (4 * len(x), len(x))


def test_fgsm_one_budget_one_gradient_and_a_forward_only_where_needed(
    classifier: nn.Module, clean_batch: Synthetic
) -> None:
    x, y = clean_batch.x[:20], clean_batch.y[:20]
    crit = Misclassification(y)
    model = Counting(classifier)
    with torch.no_grad():
        clean = crit.is_adversarial(classifier(x))
    res = FGSM()(model, x, crit, epsilons=[4 / 255])
    assert model.grad == len(x)
    assert model.fwd == int((~clean).sum())  # the clean forward judged the others already
    assert res.passes == model.grad + model.fwd
    with torch.no_grad():
        assert torch.equal(crit.is_adversarial(classifier(res.clipped[0])), res.success[0])


def test_fgsm_craft_skips_the_success_forward(
    classifier: nn.Module, clean_batch: Synthetic
) -> None:
    x, y = clean_batch.x[:20], clean_batch.y[:20]
    crit = Misclassification(y)
    model = Counting(classifier)
    crafted = FGSM().craft(model, x, crit, epsilons=[4 / 255])
    assert (model.grad, model.fwd) == (len(x), 0)
    assert torch.equal(crafted[0], FGSM()(classifier, x, crit, epsilons=[4 / 255]).clipped[0])


@pytest.mark.parametrize("scope", ["sample", "batch"])
def test_cw_spends_no_pass_on_success_it_already_judged(
    scope: str, classifier: nn.Module, clean_batch: Synthetic
) -> None:
    x, y = clean_batch.x[:12], clean_batch.y[:12]
    crit = Misclassification(y)
    model = Counting(classifier)
    res = CarliniWagnerL2(binary_search_steps=1, steps=10, initial_const=10.0,
                          abort_scope=scope)(model, x, crit, epsilons=[0.3, float("inf")])
    assert model.grad <= 10 * len(x)
    unbounded = res.success[1]
    assert unbounded.all()  # every row found: the unbounded budget costs no forward
    inside = (res.clipped[0] - x).flatten(1).norm(dim=1) < 0.3 - 1e-6
    assert model.fwd == int((~inside).sum())  # only rows the 0.3 budget clipped are re-judged
    assert res.passes == model.grad + model.fwd
    with torch.no_grad():
        for clipped, ok in zip(res.clipped, res.success, strict=True):
            assert torch.equal(crit.is_adversarial(classifier(clipped)), ok)
