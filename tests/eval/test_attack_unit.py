from __future__ import annotations

import torch

from facerobust.eval.attack_unit import broken_within


def test_a_sample_broken_at_a_smaller_budget_counts_at_every_larger_one() -> None:
    # budgets in config order 4, 1, 2 (not sorted); three samples
    part = {"adv": torch.tensor([[False, True, False],    # 4/255
                                 [True, False, False],    # 1/255
                                 [False, False, False]]),  # 2/255
            "clean": torch.zeros(3, dtype=torch.bool)}
    out = broken_within(part, [4.0, 1.0, 2.0])
    assert out["adv"].tolist() == [[True, True, False], [True, False, False],
                                   [True, False, False]]
    assert out["clean"] is part["clean"] and part["adv"][2].tolist() == [False] * 3
