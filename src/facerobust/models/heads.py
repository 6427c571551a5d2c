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

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from facerobust import models
from facerobust.core.splits import IdentitySplit

HeadKind = Literal["cosine", "linear"]
HEAD_FORMAT = 2


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
    with torch.enable_grad():  # also when called inside a no_grad context
        for _ in range(epochs):
            opt.zero_grad()
            F.cross_entropy(head(x), y).backward()
            opt.step()
    return head.eval()


@dataclass(frozen=True)
class HeadFile:
    """A head saved by ``facerobust train-head``: the embedder's name, the head weights, the
    identities and the identification split (paths relative to the dataset root)."""

    path: Path
    model: str
    kind: str
    dim: int
    names: list[str]
    split_data: dict[str, Any]
    state_dict: dict[str, Any]
    report: dict[str, Any]

    def build_head(self) -> nn.Module:
        head = make_head(self.kind, self.dim, len(self.names))  # type: ignore[arg-type]
        head.load_state_dict(self.state_dict)
        return head.eval()

    def split(self, root: Path) -> IdentitySplit:
        """The identification split this head was trained on."""
        return IdentitySplit.from_dict(self.split_data, Path(root))

    def check_compatible(self, *, model: str, root: Path) -> None:
        """Refuse a head trained on another model or on identities this dataset lacks."""
        if self.model != model:
            raise ValueError(f"{self.path}: this head was trained on model {self.model!r}, not "
                             f"on the victim {model!r}; train one with `facerobust train-head "
                             f"--model {model}`")
        split = self.split(root)
        missing = [p for p in (*split.train_paths, *split.probe_paths) if not p.is_file()]
        if missing:
            raise ValueError(f"{self.path}: trained on another identity set: {len(missing)} of "
                             f"its enrolment/probe images are not in {root} (e.g. {missing[0]})")

    def describe(self) -> str:
        return (f"{self.kind} head from {self.path.name} (trained by train-head on "
                f"{self.model}, {len(self.names)} identities)")


def save_identification(path: Path, *, model_name: str, kind: str, head: nn.Module,
                        names: list[str], split: dict[str, Any], report: dict[str, Any]) -> None:
    """Save a head; ``split`` is ``IdentitySplit.to_dict(root)`` (relative paths)."""
    torch.save({"format": HEAD_FORMAT, "model": model_name, "kind": kind,
                "state_dict": head.state_dict(), "dim": _head_dim(head), "names": names,
                "split": split, "report": report}, path)


def _head_dim(head: nn.Module) -> int:
    if isinstance(head, CosineHead):
        return int(head.weight.shape[1])
    if isinstance(head, LinearHead):
        return int(head.fc.in_features)
    raise TypeError(f"unknown head type {type(head).__name__}")


def read_head_file(path: Path | str) -> HeadFile:
    """Read and check a head file; errors name the file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"identification head file not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt file
        raise ValueError(f"{path}: not a readable facerobust head file ({err})") from None
    if not isinstance(blob, dict) or blob.get("format") != HEAD_FORMAT:
        found = blob.get("format") if isinstance(blob, dict) else None
        raise ValueError(f"{path}: not a facerobust identification head of format "
                         f"{HEAD_FORMAT} (found {found!r}); retrain it with "
                         "`facerobust train-head`")
    try:
        return HeadFile(path, str(blob["model"]), str(blob["kind"]), int(blob["dim"]),
                        list(blob["names"]), dict(blob["split"]), blob["state_dict"],
                        dict(blob.get("report", {})))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: head file is missing {err}") from None


def load_identification(path: Path | str, *, device: str | None = None) -> IdentificationModel:
    """Rebuild a saved identification system: the zoo embedder + the trained head."""
    saved = read_head_file(path)
    ident = IdentificationModel(models.load(saved.model), saved.build_head(), names=saved.names,
                                split={**saved.split_data, "report": saved.report})
    return ident.to(device).eval() if device else ident.eval()
