"""Accessory regions and the physical constraints on their colours (issue 27)."""

from __future__ import annotations

import pytest
import torch

from facerobust.attacks.accessory import (
    ACCESSORIES,
    cell_pixels,
    nearest_palette,
    non_printability,
    palette_tensor,
    region,
    total_variation,
)


@pytest.mark.parametrize("name", ACCESSORIES)
def test_regions_are_inside_the_chip_and_where_they_belong(name: str) -> None:
    m = region(name)
    assert m.shape == (1, 1, 150, 150) and set(m.unique().tolist()) == {0.0, 1.0}
    rows = m[0, 0].nonzero()[:, 0].float()
    area = float(m.mean())
    assert 0.005 < area < 0.35  # a region, not the whole face
    centre = float(rows.mean())
    expected = {"eyeglasses": (35, 60), "forehead": (5, 30), "cheek": (80, 105),
                "mask": (85, 145)}[name]
    assert expected[0] <= centre <= expected[1]


def test_region_scales_with_the_chip_size() -> None:
    small, big = region("eyeglasses", 75), region("eyeglasses", 300)
    assert abs(float(small.mean()) - float(big.mean())) < 0.01


def test_unknown_accessory_and_bad_palette_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown accessory 'hat'"):
        region("hat")
    with pytest.raises(ValueError, match="two or more RGB colours"):
        palette_tensor(((0.1, 0.2, 1.5), (0.0, 0.0, 0.0)))
    with pytest.raises(ValueError, match="min_feature_mm must be > 0"):
        cell_pixels(0)


def test_printability_is_zero_on_the_palette_and_falls_under_optimisation() -> None:
    palette = palette_tensor()
    mask = region("forehead")
    snapped = nearest_palette(torch.rand(1, 3, 150, 150), palette)
    assert float(non_printability(snapped, mask, palette)) == 0.0
    logits = torch.nn.Parameter(torch.randn(1, 3, 150, 150))
    opt = torch.optim.Adam([logits], lr=0.05)
    start = float(non_printability(torch.sigmoid(logits), mask, palette).detach())
    for _ in range(40):
        loss = non_printability(torch.sigmoid(logits), mask, palette)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(non_printability(torch.sigmoid(logits), mask, palette).detach()) < 0.5 * start


def test_total_variation_counts_only_inside_the_mask() -> None:
    mask = region("cheek")
    noise = torch.rand(1, 3, 150, 150)
    outside = noise * (1 - mask) + 0.5 * mask  # all the noise outside the region
    assert float(total_variation(outside, mask)) < 1e-6 < float(total_variation(noise, mask))


def test_cell_size_follows_the_minimum_feature() -> None:
    assert cell_pixels(1.0) == 1 and cell_pixels(3.0) == 3 and cell_pixels(10.0) == 8
