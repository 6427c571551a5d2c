"""Tiny seeded models shared by the defense tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from facerobust.models.base import FaceModel


class TinyFace(FaceModel):
    """A small seeded conv embedding model on 32x32 chips (euclidean, threshold 0.6)."""

    name = "tiny-face"
    input_size = (32, 32)
    embedding_dim = 16
    metric = "euclidean"
    threshold = 0.6

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(16 * 8 * 8, self.embedding_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x * 2 - 1)


class Quantised(FaceModel):
    """A deliberately gradient-masked model: rounds its input to 8 levels first."""

    name = "quantised"
    input_size = (32, 32)
    embedding_dim = 16
    metric = "euclidean"
    threshold = 0.6

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.round(x * 7) / 7)


@pytest.fixture()
def tiny() -> TinyFace:
    return TinyFace(seed=0).eval()


@pytest.fixture()
def chips() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand((6, 3, 32, 32), generator=g)


@pytest.fixture()
def make_tiny() -> type[TinyFace]:
    return TinyFace


@pytest.fixture()
def make_quantised() -> type[Quantised]:
    return Quantised


@pytest.fixture()
def pairs(tiny: TinyFace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """8 genuine (x2 = x1 + small noise) and 8 impostor pairs; tiny's threshold set between."""
    g = torch.Generator().manual_seed(0)
    n = 16
    x1 = nn.functional.avg_pool2d(torch.rand((n, 3, 32, 32), generator=g), 3, 1, 1)
    x2 = (x1 + 0.03 * torch.randn(x1.shape, generator=g)).clamp(0, 1)
    x2[n // 2:] = x2[n // 2:].roll(1, 0)
    same = torch.arange(n) < n // 2
    with torch.no_grad():
        d = tiny.distance(tiny(x1), tiny(x2))
    tiny.threshold = float((d[same].max() + d[~same].min()) / 2)
    return x1, x2, same
