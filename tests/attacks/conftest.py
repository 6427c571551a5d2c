"""Tiny seeded models and synthetic data so attack tests need no real weights or data."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

SIZE = 32
CLASSES = 6


class TinyNet(nn.Module):
    """Small conv net (3x32x32 -> ``out`` features)."""

    def __init__(self, out: int, shift: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * 8 * 8, out),
        )
        self.shift = shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shift


class TinyFace(nn.Module):
    """Tiny 'face model': the classifier's logits used as raw descriptors (euclidean)."""

    metric = "euclidean"

    def __init__(self, net: nn.Module, threshold: float) -> None:
        super().__init__()
        self.net = net
        self.threshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass
class Synthetic:
    x: torch.Tensor
    y: torch.Tensor


def make_data(n_per_class: int, seed: int) -> Synthetic:
    g = torch.Generator().manual_seed(1234)
    protos = torch.rand(CLASSES, 3, SIZE, SIZE, generator=g)
    g2 = torch.Generator().manual_seed(seed)
    y = torch.arange(CLASSES).repeat_interleave(n_per_class)
    noise = torch.randn(len(y), 3, SIZE, SIZE, generator=g2) * 0.25
    x = (0.5 * protos[y] + 0.5 * torch.rand(len(y), 3, SIZE, SIZE, generator=g2) + noise * 0.3)
    return Synthetic(x.clamp(0, 1), y)


@pytest.fixture(scope="session")
def classifier() -> nn.Module:
    """A seeded TinyNet classifier trained for a few epochs on synthetic prototypes.

    Logits are shifted by +20 (argmax/softmax unchanged) so torchattacks' CW margin quirk
    (it zeroes the true logit before taking the max of the others) matches the textbook one.
    """
    torch.manual_seed(0)
    net = TinyNet(CLASSES, shift=20.0)
    data = make_data(40, seed=1)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(15):
        perm = torch.randperm(len(data.y))
        for i in range(0, len(perm), 60):
            b = perm[i : i + 60]
            loss = nn.functional.cross_entropy(net(data.x[b]), data.y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@pytest.fixture(scope="session")
def clean_batch(classifier: nn.Module) -> Synthetic:
    """Held-out samples the classifier gets right (64 at most)."""
    data = make_data(20, seed=2)
    with torch.no_grad():
        ok = classifier(data.x).argmax(1) == data.y
    return Synthetic(data.x[ok][:64], data.y[ok][:64])


@pytest.fixture(scope="session")
def face_pairs(classifier: nn.Module) -> tuple[TinyFace, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(model, probes, own-identity descriptors, victim descriptors) for 12 probes.

    Own references are jittered copies of each probe; victims come from another class. The
    threshold sits halfway between the median genuine and the median impostor distance.
    """
    data = make_data(2, seed=5)
    x = data.x[:12]
    other = make_data(2, seed=6)
    victim_idx = (torch.arange(12) + 2) % 12  # another class (2 samples per class)
    jitter = 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        clean = classifier(x)
        own = classifier((x + jitter).clamp(0, 1))
        victims = classifier(other.x[victim_idx])
    genuine = (clean - own).norm(dim=1).median()
    impostor = (clean - victims).norm(dim=1).median()
    model = TinyFace(classifier, threshold=float(genuine + impostor) / 2)
    return model, x, own, victims
