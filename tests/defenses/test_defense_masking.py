from __future__ import annotations

import torch

from facerobust.defenses import DefendedModel, parse_defense
from facerobust.defenses.masking import (
    blackbox_beats_whitebox,
    masking_flags,
    output_variation,
    success_not_rising,
    zero_gradient_fraction,
)


def test_quantising_model_is_flagged_and_plain_model_is_not(tiny, chips, make_quantised) -> None:
    masked = make_quantised(tiny)
    flags = masking_flags(masked, chips)
    assert flags.zero_grad_fraction == 1.0 and flags.zero_gradients and flags.any
    plain = masking_flags(tiny, chips, whitebox={0.01: 0.2, 0.03: 0.7},
                          blackbox={0.01: 0.1, 0.03: 0.5})
    assert plain.zero_grad_fraction < 0.5
    assert not plain.any and plain.to_dict()["any"] is False


def test_jpeg_defended_model_flags_zero_gradients(tiny, chips) -> None:
    flags = masking_flags(DefendedModel(tiny, parse_defense("jpeg:q=75")), chips)
    assert flags.zero_gradients and not flags.random_outputs


def test_random_defense_flags_random_outputs(tiny, chips) -> None:
    model = DefendedModel(tiny, parse_defense("rp:scale=0.2"))
    assert output_variation(model, chips) > 1e-3
    assert masking_flags(model, chips).random_outputs
    assert output_variation(tiny, chips) == 0.0


def test_zero_gradient_fraction_without_graph_is_one(chips) -> None:
    class Detached(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.detach().flatten(1)[:, :4]

    assert zero_gradient_fraction(Detached(), chips) == 1.0


def test_success_tables() -> None:
    assert success_not_rising({1 / 255: 0.5, 2 / 255: 0.3})          # falls
    assert success_not_rising({2 / 255: 0.1, 8 / 255: 0.1})          # flat, below 1
    assert not success_not_rising({2 / 255: 0.1, 8 / 255: 0.6})
    assert not success_not_rising({2 / 255: 1.0, 8 / 255: 1.0})      # saturated
    assert not success_not_rising({2 / 255: 0.1})
    assert blackbox_beats_whitebox({0.03: 0.0}, {0.03: 0.4})
    assert not blackbox_beats_whitebox({0.03: 0.5}, {0.03: 0.5, 0.06: 0.9})
