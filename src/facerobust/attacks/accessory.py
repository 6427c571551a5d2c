"""Wearable accessories as threat regions: where on the face an attacker's printed texture may
go (eyeglass frames, a forehead sticker, a cheek sticker, a mouth-and-nose mask), and the
physical constraints on its colours (printability against a printer palette, smoothness,
a minimum feature size).

Regions are drawn in the canonical chip frame (dlib's 150x150 chip with padding 0.25, where
the 5-point template puts the eyes at (47.7, 47) and (100.3, 47) and the nose at (74, 88)),
so the capture's own landmarks place and scale them on every face. At the stated face width
of :data:`FACE_WIDTH_MM` (the chip's 105 px between the outer eye-template points x 2), one
chip pixel is about :data:`MM_PER_PX` millimetres.

References: Sharif et al., "Accessorize to a Crime", CCS 2016 (eyeglass frames, the
non-printability score); Komkov and Petiushko, "AdvHat", 2019 (forehead sticker); Zolfi et
al., "Adversarial Mask", 2022 (mouth-and-nose mask).
"""

from __future__ import annotations

import math

import torch

CHIP = 150
FACE_WIDTH_MM = 140.0  # a typical adult bizygomatic width
MM_PER_PX = FACE_WIDTH_MM / 105.0
EYES = ((47.7, 47.1), (100.3, 47.1))
ACCESSORIES = ("eyeglasses", "forehead", "cheek", "mask")
# a default printer palette: the 3x3x3 grid of ink levels a desktop inkjet reproduces well
DEFAULT_PALETTE = tuple((r, g, b) for r in (0.1, 0.5, 0.9) for g in (0.1, 0.5, 0.9)
                        for b in (0.1, 0.5, 0.9))


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    scale = size / CHIP
    idx = (torch.arange(size, dtype=torch.float32) + 0.5) / scale
    return idx[None, :].expand(size, size), idx[:, None].expand(size, size)  # x, y


def _ellipse(x: torch.Tensor, y: torch.Tensor, cx: float, cy: float, a: float,
             b: float) -> torch.Tensor:
    return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0


def _box(x: torch.Tensor, y: torch.Tensor, x0: float, x1: float, y0: float,
         y1: float) -> torch.Tensor:
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


def region(accessory: str, size: int = CHIP) -> torch.Tensor:
    """The accessory's region as a (1, 1, size, size) float mask in the chip frame."""
    x, y = _grid(size)
    if accessory == "eyeglasses":  # two rims, the bridge and the start of the temples
        rims = [_ellipse(x, y, cx, cy, 21, 14) & ~_ellipse(x, y, cx, cy, 15, 9)
                for cx, cy in EYES]
        m = rims[0] | rims[1] | _box(x, y, 66, 82, 42, 48)
        m = m | _box(x, y, 12, 28, 40, 46) | _box(x, y, 120, 136, 40, 46)
    elif accessory == "forehead":
        m = _box(x, y, 45, 105, 6, 26)
    elif accessory == "cheek":
        m = _ellipse(x, y, 38, 92, 13, 11)
    elif accessory == "mask":
        m = _ellipse(x, y, 74, 112, 44, 34) & (y >= 78)
    else:
        raise ValueError(f"unknown accessory {accessory!r}; use {', '.join(ACCESSORIES)}")
    return m.float()[None, None]


def cell_pixels(min_feature_mm: float) -> int:
    """Chip pixels per texture cell so that no printed feature is smaller than
    ``min_feature_mm`` at :data:`FACE_WIDTH_MM`."""
    if min_feature_mm <= 0:
        raise ValueError(f"min_feature_mm must be > 0, got {min_feature_mm}")
    return max(1, math.ceil(min_feature_mm / MM_PER_PX))


def palette_tensor(palette: tuple[tuple[float, float, float], ...] = DEFAULT_PALETTE
                   ) -> torch.Tensor:
    """The palette as a (P, 3) tensor; ValueError for colours outside [0, 1]."""
    p = torch.tensor(palette, dtype=torch.float32)
    if p.ndim != 2 or p.shape[1] != 3 or p.shape[0] < 2 or p.min() < 0 or p.max() > 1:
        raise ValueError("a palette is two or more RGB colours in [0, 1]")
    return p


def non_printability(texture: torch.Tensor, mask: torch.Tensor,
                     palette: torch.Tensor) -> torch.Tensor:
    """How far the texture's colours are from printable ones: per masked pixel, the distance
    to the nearest palette colour, averaged over the mask (0 when every pixel is a palette
    colour). Sharif et al.'s score multiplies the distances to all palette colours instead;
    with a palette of more than a few colours that product vanishes, and so does its
    gradient."""
    d = (texture[:, None] - palette[None, :, :, None, None]).norm(dim=2)  # (N, P, H, W)
    score = d.min(dim=1, keepdim=True).values
    return (score * mask).sum() / mask.sum().clamp_min(1.0)


def total_variation(texture: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels inside the mask (smoothness)."""
    dx = (texture[..., :, 1:] - texture[..., :, :-1]).abs() * mask[..., :, 1:] * mask[..., :, :-1]
    dy = (texture[..., 1:, :] - texture[..., :-1, :]).abs() * mask[..., 1:, :] * mask[..., :-1, :]
    return (dx.sum() + dy.sum()) / mask.sum().clamp_min(1.0)


def nearest_palette(texture: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Each pixel replaced by its nearest palette colour (what is finally printed)."""
    d = (texture[:, None] - palette[None, :, :, None, None]).norm(dim=2)
    idx = d.argmin(dim=1)  # (N, H, W)
    return palette[idx].permute(0, 3, 1, 2).contiguous()


__all__ = ["ACCESSORIES", "DEFAULT_PALETTE", "FACE_WIDTH_MM", "MM_PER_PX", "cell_pixels",
           "nearest_palette", "non_printability", "palette_tensor", "region",
           "total_variation"]
