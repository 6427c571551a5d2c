"""Closed-set identification: an embedding model + a classifier head over N enrolled people.

The seed access-control system ("NN1/NN2"): a face model from the zoo embeds the canonical chip
and a small head (cosine-softmax or linear) trained on ``k`` images per identity names the
person. Training runs on cached embeddings (full-batch Adam), so it takes seconds to minutes
on 2 CPU cores. :class:`IdentificationModel` is differentiable end to end (chips -> logits).

>>> ident = load_identification("head.pt")            # doctest: +SKIP
>>> ident(chips).argmax(1)                             # doctest: +SKIP
>>> ident.names[0], ident.split["probe"][:2]           # doctest: +SKIP
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

HeadKind = Literal["cosine", "linear"]


class CosineHead(nn.Module):
    """``logits = scale * cos(embedding, class weight)`` (normalised softmax classifier)."""

    def __init__(self, dim: int, n_classes: int, *, scale: float = 16.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, dim) * 0.01)
        self.scale = float(scale)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(e, dim=1) @ F.normalize(self.weight, dim=1).T


class LinearHead(nn.Module):
    """A linear classifier on the L2-normalised embedding."""

    def __init__(self, dim: int, n_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, n_classes)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return self.fc(F.normalize(e, dim=1))


def make_head(kind: HeadKind, dim: int, n_classes: int) -> nn.Module:
    if kind == "cosine":
        return CosineHead(dim, n_classes)
    if kind == "linear":
        return LinearHead(dim, n_classes)
    raise ValueError(f"head kind must be 'cosine' or 'linear', got {kind!r}")


class IdentificationModel(nn.Module):
    """chips (N,3,150,150) in [0,1] -> logits over ``names``; differentiable end to end."""

    def __init__(self, embedder: nn.Module, head: nn.Module, *, names: list[str] | None = None,
                 split: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.embedder = embedder
        self.head = head
        self.names = list(names or [])
        self.split = dict(split or {})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedder(x))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self(x).argmax(dim=1)


@dataclass
class HeadTraining:
    kind: str
    epochs: int
    train_accuracy: float
    probe_top1: float
    n_identities: int
    n_train: int
    n_probe: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_head(train_emb: torch.Tensor, train_labels: torch.Tensor, *, n_classes: int,
               kind: HeadKind = "cosine", epochs: int = 300, lr: float = 0.05,
               weight_decay: float = 1e-4, seed: int = 0) -> nn.Module:
    """Fit a head on fixed embeddings (full-batch Adam, cross-entropy)."""
    if train_emb.ndim != 2 or len(train_emb) != len(train_labels):
        raise ValueError(f"need (M, D) embeddings and M labels, got {tuple(train_emb.shape)} "
                         f"and {tuple(train_labels.shape)}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    torch.manual_seed(seed)
    head = make_head(kind, train_emb.shape[1], n_classes)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    x, y = train_emb.detach().float(), train_labels.long()
    for _ in range(epochs):
        opt.zero_grad()
        F.cross_entropy(head(x), y).backward()
        opt.step()
    return head.eval()


def split_identities(people: dict[str, list[Path]], *, min_images: int, per_identity: int,
                     max_identities: int, max_probes: int, seed: int
                     ) -> tuple[list[str], list[tuple[Path, int]], list[tuple[Path, int]]]:
    """Identities with >= ``min_images`` (and > ``per_identity``) images, the most populous
    first; ``per_identity`` random train/gallery images each, up to ``max_probes`` held-out."""
    if per_identity < 1 or min_images < 2 or max_identities < 2:
        raise ValueError("need per_identity >= 1, min_images >= 2 and max_identities >= 2")
    eligible = [n for n, f in people.items() if len(f) >= max(min_images, per_identity + 1)]
    eligible.sort(key=lambda n: (-len(people[n]), n))
    names = sorted(eligible[:max_identities])
    if len(names) < 2:
        raise ValueError(f"only {len(names)} identities have >= {min_images} images")
    rng = random.Random(seed)
    train: list[tuple[Path, int]] = []
    probe: list[tuple[Path, int]] = []
    for label, name in enumerate(names):
        files = sorted(people[name])
        rng.shuffle(files)
        train += [(p, label) for p in files[:per_identity]]
        probe += [(p, label) for p in files[per_identity: per_identity + max_probes]]
    return names, train, probe


def save_identification(path: Path, *, model_name: str, kind: str, head: nn.Module,
                        names: list[str], split: dict[str, Any], report: dict[str, Any]) -> None:
    torch.save({"format": 1, "model": model_name, "kind": kind, "state_dict": head.state_dict(),
                "dim": _head_dim(head), "names": names, "split": split, "report": report}, path)


def _head_dim(head: nn.Module) -> int:
    return int(head.weight.shape[1]) if isinstance(head, CosineHead) else int(head.fc.in_features)


def load_identification(path: Path | str, *, device: str | None = None) -> IdentificationModel:
    """Rebuild a saved identification system: the zoo embedder + the trained head."""
    from facerobust import models

    blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    if blob.get("format") != 1:
        raise ValueError(f"{path}: not a facerobust identification head file")
    head = make_head(blob["kind"], int(blob["dim"]), len(blob["names"]))
    head.load_state_dict(blob["state_dict"])
    ident = IdentificationModel(models.load(blob["model"]), head.eval(), names=blob["names"],
                                split={**blob["split"], "report": blob.get("report", {})})
    return ident.to(device).eval() if device else ident.eval()
