"""Ensemble surrogates: one attack on several models, success only when all are fooled."""

from __future__ import annotations

import pytest
import torch

from facerobust.attacks import PGD, Dodging, Impersonation
from facerobust.attacks.ensemble import Ensemble, EnsembleCriterion
from tests.helpers.models import PooledPixels


def _setup() -> tuple[Ensemble, EnsembleCriterion, torch.Tensor, list]:
    a, b = PooledPixels(8), PooledPixels(4)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 150, 150, generator=g)
    with torch.no_grad():
        crits = [Dodging.for_model(m, m(x)) for m in (a, b)]
    ens = Ensemble([a, b], [64, 16])
    return ens, EnsembleCriterion(crits, ens.sizes), x, crits


def test_outputs_split_and_success_needs_every_member() -> None:
    ens, crit, x, crits = _setup()
    with torch.no_grad():
        out = ens(x)
    assert out.shape == (6, 80)
    crit.check(out)
    assert not crit.is_adversarial(out).any()  # own photos: nobody is fooled
    res = PGD(steps=10, early_stop=False)(ens, x, crit,
                                          epsilons=[32 / 255],
                                          generator=torch.Generator().manual_seed(0))
    adv = res.clipped[0]
    with torch.no_grad():
        each = [c.is_adversarial(m(adv)) for c, m in zip(crits, ens.members, strict=True)]
    assert torch.equal(res.success[0], each[0] & each[1])
    assert res.success[0].any()


def test_loss_is_the_members_mean_and_subsets_stay_aligned() -> None:
    ens, crit, x, crits = _setup()
    with torch.no_grad():
        out = ens(x * 0.9 + 0.05)
    parts = torch.split(out, ens.sizes, dim=1)
    expected = (crits[0].loss(parts[0]) + crits[1].loss(parts[1])) / 2
    assert torch.allclose(crit.loss(out), expected)
    sub = crit.subset(torch.tensor([1, 3]))
    assert len(sub) == 2 and torch.allclose(sub.loss(out[[1, 3]]), expected[[1, 3]])


def test_mismatched_members_are_refused() -> None:
    _, _, x, crits = _setup()
    with pytest.raises(ValueError, match="needs >= 2 members"):
        Ensemble([PooledPixels()], [64])
    other = Impersonation.for_model(PooledPixels(), torch.zeros(3, 64))
    with pytest.raises(ValueError, match="different sample counts"):
        EnsembleCriterion([crits[0], other], [64, 64])
    ens, crit, _, _ = _setup()
    with pytest.raises(ValueError, match=r"expects \(N, 80\) outputs"):
        crit.check(torch.zeros(6, 64))
