"""What happens between printing an accessory and the gate's camera, as random draws: where
the accessory sits on the face (shift, rotation), the head's pose and distance (the sampling
grid's shift and scale, i.e. how the landmarks land), lighting (brightness, contrast, a colour
cast), blur, sensor noise and JPEG. Each draw is a plain record; training draws and held-out
draws come from separate generators (``purpose`` "train" / "heldout"), so the judged captures
are never the optimised ones.

The parameters are documented defaults, not a measured camera: this simulates the physical
step, it does not replace printing and photographing.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import torch
from torch import nn

PURPOSES = ("train", "heldout")


@dataclass(frozen=True)
class CaptureVariation:
    """Ranges of the draws (each uniform in [-x, x] unless stated)."""

    placement_px: float = 2.0  # accessory shift on the face, chip pixels (~2.7 mm)
    rotation_deg: float = 4.0  # accessory rotation on the face
    grid_px: float = 1.5  # head position / landmark error, chip pixels
    grid_scale: float = 0.04  # head distance, relative
    brightness: float = 0.08  # added to every channel
    contrast: float = 0.15  # multiplied around the mean: 1 +- this
    cast: float = 0.06  # per-channel gain: 1 +- this
    blur_p: float = 0.5  # probability of a 3x3 Gaussian blur
    noise: float = 0.02  # sensor noise sigma, uniform in [0, this]
    jpeg: tuple[int, int] = (70, 95)  # quality range of the camera's JPEG (exact judge only)

    def __post_init__(self) -> None:
        for name in ("placement_px", "rotation_deg", "grid_px", "grid_scale", "brightness",
                     "contrast", "cast", "noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"capture variation {name} must be >= 0")
        if not 0 <= self.blur_p <= 1:
            raise ValueError("capture variation blur_p must be in [0, 1]")
        lo, hi = self.jpeg
        if not 1 <= lo <= hi <= 100:
            raise ValueError(f"capture variation jpeg must be 1 <= low <= high <= 100, "
                             f"got {self.jpeg}")


@dataclass(frozen=True)
class Draw:
    """One capture: accessory placement, grid jitter, lighting, blur, noise, JPEG quality."""

    purpose: str
    index: int
    shift: tuple[float, float]
    rotation: float  # radians
    jitter: tuple[float, float, float]  # ChipWarp jitter (dx, dy, scale)
    brightness: float
    contrast: float
    cast: tuple[float, float, float]
    blur: bool
    noise: float
    jpeg: int
    noise_seed: int


def draws(variation: CaptureVariation, n: int, seed: int, purpose: str) -> list[Draw]:
    """``n`` draws of ``purpose`` ("train" or "heldout"): the two come from generators
    seeded apart, so they never coincide."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}, got {purpose!r}")
    gen = torch.Generator().manual_seed(zlib.crc32(f"{seed}:{purpose}".encode()))
    out = []
    for i in range(n):
        u = (torch.rand(14, generator=gen) * 2 - 1).tolist()
        v = variation
        lo, hi = v.jpeg
        out.append(Draw(
            purpose, i, (u[0] * v.placement_px, u[1] * v.placement_px),
            math.radians(u[2] * v.rotation_deg),
            (u[3] * v.grid_px, u[4] * v.grid_px, 1.0 + u[5] * v.grid_scale),
            u[6] * v.brightness, 1.0 + u[7] * v.contrast,
            (1.0 + u[8] * v.cast, 1.0 + u[9] * v.cast, 1.0 + u[10] * v.cast),
            (u[11] + 1) / 2 < v.blur_p, (u[12] + 1) / 2 * v.noise,
            round(lo + (u[13] + 1) / 2 * (hi - lo)), i * 7919 + (1 if purpose == "train" else 2)))
    return out


def place(chip_frame: torch.Tensor, draw: Draw) -> torch.Tensor:
    """The accessory's chip-frame tensor shifted and rotated as worn in ``draw``."""
    n, _, s, _ = chip_frame.shape
    cos, sin = math.cos(draw.rotation), math.sin(draw.rotation)
    half = (s - 1) / 2
    theta = torch.tensor([[cos, -sin, -draw.shift[0] / half],
                          [sin, cos, -draw.shift[1] / half]], dtype=chip_frame.dtype)
    grid = nn.functional.affine_grid(theta[None].expand(n, 2, 3), list(chip_frame.shape),
                                     align_corners=True)
    return nn.functional.grid_sample(chip_frame, grid, mode="bilinear", padding_mode="zeros",
                                     align_corners=True)


_BLUR = torch.tensor([1.0, 2.0, 1.0]) / 4


def light(photo: torch.Tensor, draw: Draw) -> torch.Tensor:
    """Lighting, blur and sensor noise of ``draw`` on a photo (differentiable)."""
    mean = photo.mean(dim=(1, 2, 3), keepdim=True)
    x = (photo - mean) * draw.contrast + mean + draw.brightness
    x = x * torch.tensor(draw.cast, dtype=x.dtype).view(1, 3, 1, 1)
    if draw.blur:
        k = (_BLUR[:, None] * _BLUR[None, :]).to(x.dtype)
        x = nn.functional.conv2d(nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"),
                                 k.expand(3, 1, 3, 3), groups=3)
    if draw.noise > 0:
        gen = torch.Generator().manual_seed(draw.noise_seed)
        x = x + torch.randn(x.shape, generator=gen, dtype=x.dtype) * draw.noise
    return x.clamp(0, 1)


__all__ = ["CaptureVariation", "Draw", "draws", "light", "place"]
