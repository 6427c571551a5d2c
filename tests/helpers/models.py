"""Tiny deterministic stand-in face models for tests that need the whole pipeline fast."""

from __future__ import annotations

import torch
from torch import nn

from facerobust.models.base import FaceModel


class PooledPixels(FaceModel):
    """8x8 average-pooled gray chip, centred: differentiable, instant, weakly face-aware."""

    name = "pooled-pixels"
    embedding_dim = 64
    metric = "euclidean"
    threshold = 1.0

    def __init__(self, pool: int = 8) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()), requires_grad=False)
        self.pool = pool
        self.embedding_dim = pool * pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        g = nn.functional.adaptive_avg_pool2d(x.mean(1, keepdim=True), self.pool).flatten(1)
        return (g - g.mean(1, keepdim=True)) * 4 + self.dummy
