"""A tiny identification task for detector tests: synthetic identities (a base image each plus
noise), a TinyResNet embedder with a trained cosine head, and PGD adversarials against it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from facerobust.attacks.criteria import TargetedMisclassification
from facerobust.attacks.registry import build_attack
from facerobust.models.heads import IdentificationModel, train_head
from tests.helpers.models import TinyResNet

IDENTITIES = 5


@dataclass
class Task:
    model: IdentificationModel
    gallery: torch.Tensor
    gallery_labels: torch.Tensor
    clean: torch.Tensor
    labels: torch.Tensor
    adversarial: torch.Tensor


def _faces(g: torch.Generator, bases: torch.Tensor, per: int) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.arange(len(bases)).repeat_interleave(per)
    coarse = torch.nn.functional.interpolate(torch.randn((len(labels), 3, 10, 10), generator=g),
                                             size=150, mode="bilinear", align_corners=False)
    noise = 0.05 * coarse + 0.05 * torch.randn((len(labels), 3, 150, 150), generator=g)
    return (bases[labels] + noise).clamp(0, 1), labels


@pytest.fixture(scope="session")
def task() -> Task:
    g = torch.Generator().manual_seed(0)
    bases = torch.nn.functional.interpolate(torch.rand((IDENTITIES, 3, 10, 10), generator=g),
                                            size=150, mode="bilinear", align_corners=False)
    gallery, gallery_labels = _faces(g, bases, 6)
    clean, labels = _faces(g, bases, 8)
    embedder = TinyResNet(seed=1)
    with torch.no_grad():
        emb = embedder(gallery)
    head = train_head(emb, gallery_labels, n_classes=IDENTITIES, seed=0)
    model = IdentificationModel(embedder, head.eval()).eval().requires_grad_(False)
    targets = (labels + 1) % IDENTITIES
    attack = build_attack("pgd", "linf", steps=10)
    res = attack(model, clean, TargetedMisclassification(targets), epsilons=[16 / 255],
                 generator=torch.Generator().manual_seed(0))
    return Task(model, gallery, gallery_labels, clean, labels, res.clipped[0])
