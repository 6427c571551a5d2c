"""Defensive distillation: saturated logits stall naive PGD; logit attacks still win."""

from __future__ import annotations

import pytest
import torch

from facerobust.defenses.defensive_distillation import (
    LogitMarginMisclassification,
    attack_rates,
    distill_head,
    zero_gradient,
)
from facerobust.models.heads import IdentificationModel, train_head
from tests.helpers.models import PooledPixels


def _faces(ids: int = 5, per: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    base = torch.nn.functional.interpolate(torch.rand((ids, 3, 6, 6), generator=g),
                                           size=(150, 150), mode="bilinear")
    x = base.repeat_interleave(per, 0) + 0.03 * torch.randn((ids * per, 3, 150, 150),
                                                            generator=g)
    return x.clamp(0, 1), torch.arange(ids).repeat_interleave(per)


def test_logit_margin_criterion_loss_is_the_margin() -> None:
    crit = LogitMarginMisclassification(torch.tensor([0, 1]))
    logits = torch.tensor([[5.0, 1.0, 2.0], [0.0, 1.0, 3.0]])
    assert crit.loss(logits).tolist() == [-3.0, 2.0]
    assert crit.subset(torch.tensor([1])).labels.tolist() == [1]


@pytest.mark.usefixtures("one_thread")
def test_distilled_head_saturates_and_logit_attacks_still_win() -> None:
    x, y = _faces()
    net = PooledPixels()
    with torch.no_grad():
        emb = net(x)
    plain = train_head(emb, y, n_classes=5, kind="linear", seed=0)
    _, distilled = distill_head(emb, y, n_classes=5, temperature=100.0, epochs=400, lr=0.1,
                                seed=0)
    with torch.no_grad():
        assert (distilled(emb).argmax(1) == y).float().mean() >= 0.9
        assert distilled(emb).abs().max() > 10 * plain(emb).abs().max()
    ident = IdentificationModel(net, distilled).eval()
    z = zero_gradient(ident, x, y)
    assert z.n == len(x) and z.k > 0  # the float32 softmax gradient vanished
    rates = attack_rates(ident, x, y, eps=16 / 255, steps=10, cw_l2=20.0, cw_steps=20)
    assert rates["logit_pgd"].k > rates["naive_pgd"].k
    assert rates["cw_l2_unbounded"].k > rates["naive_pgd"].k
    with pytest.raises(ValueError, match="temperature must be >= 1"):
        distill_head(emb, y, n_classes=5, temperature=0.5)
