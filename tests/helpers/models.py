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


class _Block(nn.Module):
    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + 0.5 * torch.relu(self.conv(x))
        return nn.functional.avg_pool2d(y, 2) if self.stride == 2 else y


class TinyResNet(FaceModel):
    """A seeded random residual net with dlib-like stages (``blocks`` with ``stride``): fast,
    face-aware like :class:`PooledPixels`, and hookable like dlib's ResNet."""

    name = "tiny-resnet"
    embedding_dim = 16
    metric = "euclidean"
    threshold = 1.0

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.stem = nn.Conv2d(3, 8, 1)
        self.blocks = nn.Sequential(_Block(8, 1), _Block(8, 2), _Block(8, 1), _Block(8, 2))
        self.fc = nn.Linear(8 * 4, 16)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        y = self.stem(nn.functional.avg_pool2d((x - 0.5) * 4, 8, ceil_mode=True))
        y = nn.functional.adaptive_avg_pool2d(self.blocks(y), 2).flatten(1)
        return self.fc(y)
