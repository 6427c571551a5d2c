"""The differentiable twin of the exact alignment: photo pixels -> chip with torch ops.

:class:`ChipWarp` applies a :class:`facerobust.data.align.WarpPlan` (the one plan the exact
path :func:`facerobust.data.align.apply_plan` also reads): the crop, ``pyramid_down<2>`` as
the same [1 4 6 4 1] filter as a convolution, and ``grid_sample`` of the chip's similarity
transform. It matches the uint8 chip to within the last bit (dlib truncates, the warp does
not), and gradients reach the photo.

:func:`paste_chip_delta` maps a chip-space perturbation back into the photo (an adversarial
chip pasted into the photo that the capture will re-align).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from facerobust.data.align import WarpPlan

_K = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])

Jitter = tuple[float, float, float]  # (dx, dy) in chip pixels, relative scale


def pyramid_down(x: torch.Tensor) -> torch.Tensor:
    """dlib ``pyramid_down<2>`` on float NCHW (filter [1 4 6 4 1]^2 / 256, every other pixel)."""
    n, c, h, w = x.shape
    nc, nr = (w - 3) // 2, (h - 3) // 2
    k = _K.to(x.device, x.dtype)
    flat = x.reshape(n * c, 1, h, w)
    rows = nn.functional.conv2d(flat, k.view(1, 1, 1, 5), stride=(1, 2))[:, :, :, :nc]
    out = nn.functional.conv2d(rows, k.view(1, 1, 5, 1), stride=(2, 1))[:, :, :nr]
    return (out / 256.0).reshape(n, c, nr, nc)


class ChipWarp(nn.Module):
    """Differentiable photo (N, 3, H, W) -> chip (N, 3, size, size) for one :class:`WarpPlan`;
    ``jitter=(dx, dy, scale)`` moves the sampling grid (chip pixels, relative scale)."""

    def __init__(self, plan: WarpPlan) -> None:
        super().__init__()
        self.plan = plan

    def forward(self, photo: torch.Tensor, jitter: Jitter = (0.0, 0.0, 1.0)) -> torch.Tensor:
        p = self.plan
        left, top, right, bottom = p.crop
        img = photo[:, :, top: bottom + 1, left: right + 1]
        for _ in range(p.levels):
            img = pyramid_down(img)
        h, w = img.shape[2:]
        s = p.size
        idx = torch.arange(s, dtype=photo.dtype, device=photo.device)
        mid = (s - 1) / 2
        cc = (idx[None, :] - mid) * jitter[2] + mid + jitter[0]
        rr = (idx[:, None] - mid) * jitter[2] + mid + jitter[1]
        xs = p.origin[0] + p.ax[0] * cc + p.ay[0] * rr
        ys = p.origin[1] + p.ax[1] * cc + p.ay[1] * rr
        grid = torch.stack([2 * xs / max(w - 1, 1) - 1, 2 * ys / max(h - 1, 1) - 1], dim=-1)
        grid = grid[None].expand(photo.shape[0], s, s, 2)
        out = nn.functional.grid_sample(img, grid, mode="bilinear", padding_mode="zeros",
                                        align_corners=True)
        return out.clamp(0, 1)


def chip_frame_to_photo(chip_frame: torch.Tensor, plan: WarpPlan, height: int,
                        width: int) -> torch.Tensor:
    """A chip-frame tensor (N, C, s, s) resampled into a photo of ``height x width`` through
    the inverse of the chip's affine (bilinear; zero outside the chip): what lies at chip
    pixel (c, r) lands where the capture would read that chip pixel from."""
    aff = plan.photo_affine()
    inv = np.linalg.inv(np.vstack([aff, [0, 0, 1]]))[:2]
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                            torch.arange(width, dtype=torch.float64), indexing="ij")
    c = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    r = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    s = plan.size
    grid = torch.stack([2 * c / (s - 1) - 1, 2 * r / (s - 1) - 1], dim=-1)[None]
    grid = grid.to(chip_frame.dtype).expand(chip_frame.shape[0], height, width, 2)
    return nn.functional.grid_sample(chip_frame, grid, mode="bilinear", padding_mode="zeros",
                                     align_corners=True)


def paste_chip_delta(photo: torch.Tensor, chip_delta: torch.Tensor, plan: WarpPlan
                     ) -> torch.Tensor:
    """``photo`` (1, 3, H, W) plus ``chip_delta`` (1, 3, s, s) mapped back through the inverse
    of the chip's affine (bilinear; zero outside the chip), clamped to [0, 1]."""
    h, w = photo.shape[2:]
    return (photo + chip_frame_to_photo(chip_delta, plan, h, w)).clamp(0, 1)
