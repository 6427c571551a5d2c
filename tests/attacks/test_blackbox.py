from __future__ import annotations

import pytest
import torch
from torch import nn

from facerobust.attacks import HopSkipJump, Misclassification, SquareAttack, flat_norm

from .conftest import Synthetic


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_square_counts_queries_within_budget(
    norm: str, classifier: nn.Module, clean_batch: Synthetic
) -> None:
    x, y = clean_batch.x[:8], clean_batch.y[:8]
    eps = 32 / 255 if norm == "linf" else 8.0
    budget = 300
    res = SquareAttack(norm, max_queries=budget)(  # type: ignore[arg-type]
        classifier, x, Misclassification(y), epsilons=[eps],
        generator=torch.Generator().manual_seed(0))
    assert res.queries is not None and res.queries.shape == (8,)
    assert int(res.queries.max()) <= budget and int(res.queries.min()) >= 2
    assert res.passes == int(res.queries.sum())
    assert float(flat_norm(res.clipped[0] - x, norm).max()) <= eps + 1e-6
    ok = res.success[0]
    assert ok.any()
    # successful samples stop early; failed ones spend the whole budget
    assert (res.queries[~ok] == budget).all()
    assert res.queries[ok].float().mean() < budget
    again = SquareAttack(norm, max_queries=budget)(  # type: ignore[arg-type]
        classifier, x, Misclassification(y), epsilons=[eps],
        generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.clipped[0], res.clipped[0])


def test_hopskipjump_decision_only_within_budget(
    classifier: nn.Module, clean_batch: Synthetic
) -> None:
    x, y = clean_batch.x[:8], clean_batch.y[:8]
    crit = Misclassification(y)
    # start from images of other classes: always adversarial
    starts = clean_batch.x[torch.tensor([int((clean_batch.y != c).nonzero()[0]) for c in y])]
    budget = 400
    attack = HopSkipJump(max_queries=budget, initial_evals=20, max_evals=40,
                         starting_points=starts)
    res = attack(classifier, x, crit, epsilons=[1.0, float("inf")],
                 generator=torch.Generator().manual_seed(0))
    assert res.queries is not None and int(res.queries.max()) <= budget
    assert res.success[1].all()  # unbounded: every sample ends adversarial
    start_dist = flat_norm(starts - x, "l2")
    final = flat_norm(res.raw[1] - x, "l2")
    assert (final < start_dist).all()  # the walk towards x made progress
    assert float(flat_norm(res.clipped[0] - x, "l2").max()) <= 1.0 + 1e-6
    again = attack(classifier, x, crit, epsilons=[float("inf")],
                   generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.raw[0], res.raw[1])
