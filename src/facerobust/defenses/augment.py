"""Seeded image augmentation for retraining: rotation, zoom in/out, horizontal flip,
brightness and contrast, applied to a chosen share of each batch.

>>> spec = AugmentSpec.parse("rotation=15,zoom=0.15,brightness=0.2,contrast=0.2")
>>> y = spec.apply(x, torch.Generator().manual_seed(0))      # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentSpec:
    """Random rotation in +-``rotation`` degrees, zoom in 1 +- ``zoom``, horizontal flip
    (half the images when ``flip``), brightness shift in +-``brightness``, contrast scale in
    1 +- ``contrast``, Gaussian noise of standard deviation ``noise`` (Gaussian augmentation,
    the training of smoothed models, Cohen et al. 2019; clipped to [0, 1]); ``fraction`` of
    each batch is augmented."""

    rotation: float = 10.0
    zoom: float = 0.1
    flip: bool = True
    brightness: float = 0.0
    contrast: float = 0.0
    fraction: float = 1.0
    noise: float = 0.0

    def __post_init__(self) -> None:
        limits = {"rotation": 180.0, "zoom": 0.5, "brightness": 1.0, "contrast": 1.0,
                  "fraction": 1.0, "noise": 1.0}
        for key, top in limits.items():
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= top:
                raise ValueError(f"augmentation {key} must be a number in [0, {top:g}], "
                                 f"got {v!r}")

    @classmethod
    def parse(cls, text: str) -> AugmentSpec:
        """``"rotation=10,zoom=0.1,flip=1,brightness=0.2,contrast=0.2,fraction=0.5"``
        (omitted keys keep their defaults; ``"none"`` turns everything off)."""
        if text.strip().lower() == "none":
            return cls(rotation=0.0, zoom=0.0, flip=False, fraction=0.0)
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, raw = part.partition("=")
            if not sep or key.strip() not in known:
                raise ValueError(f"augmentation {part!r}: use key=value with keys "
                                 f"{', '.join(sorted(known))}")
            try:
                values[key.strip()] = (raw.strip() not in ("0", "false", "no")
                                       if key.strip() == "flip" else float(raw))
            except ValueError:
                raise ValueError(f"augmentation {part!r}: {raw!r} is not a number") from None
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def geometric(self) -> bool:
        """Flips, rotations, zoom, brightness or contrast are on (everything but noise)."""
        return self.fraction > 0 and (self.rotation > 0 or self.zoom > 0 or self.flip
                                      or self.brightness > 0 or self.contrast > 0)

    @property
    def active(self) -> bool:
        return self.geometric or (self.fraction > 0 and self.noise > 0)

    def apply(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``x`` with a seeded ``fraction`` of its rows augmented."""
        return self.add_noise(self.apply_clean(x, generator), generator)

    def apply_clean(self, x: torch.Tensor, generator: torch.Generator | None = None
                    ) -> torch.Tensor:
        """:meth:`apply` without the noise (what a clean teacher sees)."""
        if not self.geometric:
            return x
        pick = torch.rand(len(x), generator=generator) < self.fraction
        if not bool(pick.any()):
            return x
        out = x.clone()
        out[pick] = augment_batch(x[pick], generator, max_degrees=self.rotation, zoom=self.zoom,
                                  flip=self.flip, brightness=self.brightness,
                                  contrast=self.contrast)
        return out

    def add_noise(self, x: torch.Tensor, generator: torch.Generator | None = None
                  ) -> torch.Tensor:
        """A seeded ``fraction`` of the rows of ``x`` plus N(0, noise^2), clipped to [0, 1]."""
        if not (self.noise > 0 and self.fraction > 0):
            return x
        pick = (torch.rand(len(x), generator=generator) < self.fraction).to(x.dtype)
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return (x + self.noise * noise * pick.view(-1, 1, 1, 1).to(x.device)).clamp(0, 1)


def augment_batch(x: torch.Tensor, generator: torch.Generator | None = None, *,
                  max_degrees: float = 10.0, zoom: float = 0.1, flip: bool = True,
                  brightness: float = 0.0, contrast: float = 0.0, shift: float = 0.0
                  ) -> torch.Tensor:
    """Every row: random flip, rotation in +-``max_degrees``, zoom in 1 +- ``zoom``, a shift
    of up to ``shift`` of the side in x and y, then contrast (around the row's mean) and
    brightness; clipped to [0, 1]."""
    n = x.shape[0]
    u = torch.rand((n, 5), generator=generator)
    angle = (2 * u[:, 0] - 1) * math.radians(max_degrees)
    scale = 1 + (2 * u[:, 1] - 1) * zoom
    mirror = torch.where((u[:, 2] < 0.5) & flip, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # the shift draws come last, and only when asked, so seeded draws without it are unchanged
    move = (2 * torch.rand((n, 2), generator=generator) - 1) * 2 * shift if shift > 0 \
        else torch.zeros(n, 2)
    theta = torch.stack([torch.stack([cos * mirror, -sin, move[:, 0]], 1),
                         torch.stack([sin * mirror, cos, move[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    y = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    c = (1 + (2 * u[:, 3] - 1) * contrast).to(x).view(-1, 1, 1, 1)
    b = ((2 * u[:, 4] - 1) * brightness).to(x).view(-1, 1, 1, 1)
    mean = y.mean(dim=(1, 2, 3), keepdim=True)
    return ((y - mean) * c + mean + b).clamp(0, 1)
