from __future__ import annotations

import pytest
import torch
from torch import nn

from facerobust.eval.hardened import HARDENED_RECIPE, JudgeOptions, PairData, judge_on_pairs
from facerobust.models.base import FaceModel


class _Tiny(FaceModel):
    name = "tiny"
    embedding_dim = 8
    metric = "euclidean"
    threshold = 0.5

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.AvgPool2d(4), nn.Flatten(), nn.Linear(3 * 8 * 8, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * 4


def test_judge_counts_pairs_and_attacks_the_same_genuine_sample() -> None:
    g = torch.Generator().manual_seed(0)
    chips = torch.rand((8, 3, 32, 32), generator=g)
    # 6 genuine pairs (a photo with itself, distance 0) and 6 impostor pairs
    a = torch.arange(12) % 8
    b = torch.cat([a[:6], (a[6:] + 1) % 8])
    pairs = PairData(chips, a, b, torch.arange(12) < 6)
    o = JudgeOptions(eps=8 / 255, steps=2, n_attack=4, n_strong=2, adaptive_steps=2,
                     cw_steps=2)
    rates = judge_on_pairs(_Tiny().eval(), pairs, o)
    assert rates["clean_accuracy"].n == 12 and rates["genuine_accept"].k == 6
    assert rates["genuine_accept"].n == 6 and rates["impostor_reject"].n == 6
    assert rates["pgd"].n == 4
    assert all(rates[k].n == 2 for k in ("pgd_adaptive", "pgd_larger", "cw_l2"))
    assert judge_on_pairs(_Tiny().eval(), pairs, o) == rates  # seeded


def test_judge_options_and_recipe_are_checked() -> None:
    with pytest.raises(ValueError, match="n_attack must be an integer >= 1"):
        JudgeOptions(n_attack=0)
    assert HARDENED_RECIPE.loss == "trades" and HARDENED_RECIPE.checkpoint is None
