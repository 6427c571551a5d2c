"""The differentiable capture path: a face model over *photos*.

:class:`PhotoFaceModel` is ``model(warp(photo))`` for one photo's
:class:`~facerobust.data.align.WarpPlan` (landmarks detected once on the clean photo), so the
library's attacks (PGD, ...) craft photo-space adversarials unchanged. With
``eot_samples > 1`` its output is the mean over random small shifts / scales of the sampling
grid (the gate re-detects the landmarks of the perturbed photo) and, with ``jpeg``, JPEG
re-encoding (straight-through gradient): Expectation over Transformation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from facerobust.data.align import WarpPlan
from facerobust.data.warp import ChipWarp, Jitter
from facerobust.defenses.transforms import JPEG


@dataclass(frozen=True)
class PhotoOptions:
    """Capture variation averaged over (EOT): draws, grid shift (chip pixels), relative scale,
    JPEG quality (0 = none), seed of the draws."""

    eot_samples: int = 1
    shift: float = 1.5
    scale: float = 0.03
    jpeg: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.eot_samples < 1:
            raise ValueError(f"eot_samples must be >= 1, got {self.eot_samples}")
        if self.shift < 0 or self.scale < 0:
            raise ValueError(f"shift and scale must be >= 0, got {self.shift}, {self.scale}")
        if not 0 <= self.jpeg <= 100:
            raise ValueError(f"jpeg must be a quality in 1..100 or 0 (off), got {self.jpeg}")


class PhotoFaceModel(nn.Module):
    """``model(warp(photo))`` for one photo's plan, optionally averaged over EOT draws."""

    def __init__(self, model: nn.Module, plan: WarpPlan,
                 options: PhotoOptions | None = None) -> None:
        super().__init__()
        self.options = opts = options or PhotoOptions()
        self.model, self.warp = model, ChipWarp(plan)
        self.jpeg = JPEG(q=opts.jpeg) if opts.jpeg else None
        self.gen = torch.Generator().manual_seed(opts.seed)
        for attr in ("metric", "threshold", "embedding_dim", "name"):
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))

    def _draw(self) -> Jitter:
        u = torch.rand(3, generator=self.gen) * 2 - 1
        o = self.options
        return (float(u[0]) * o.shift, float(u[1]) * o.shift, 1.0 + float(u[2]) * o.scale)

    def forward(self, photo: torch.Tensor) -> torch.Tensor:
        if self.options.eot_samples == 1:
            return self.model(self.warp(photo))
        outs = []
        for _ in range(self.options.eot_samples):
            x = self.jpeg.bpda(photo) if self.jpeg is not None else photo
            outs.append(self.model(self.warp(x, self._draw())))
        return torch.stack(outs).mean(0)

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.model.distance(a, b)  # type: ignore[operator]
