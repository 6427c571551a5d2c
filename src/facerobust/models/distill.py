"""Train a :class:`~facerobust.models.student.StudentNet` to reproduce a teacher's descriptors
(knowledge distillation on embeddings: MSE plus a cosine term), with a held-out validation
split and the best checkpoint kept (the threshold is calibrated on the training identities by
:func:`facerobust.eval.distillation.calibrate_threshold`).

The teacher's descriptors of the chips and of their mirror images are computed once
(:func:`facerobust.core.embedding.embed`); each epoch sees every chip, flipped or not (seeded).

>>> student, hist = train_student(teacher, chips, TrainStudentOptions(epochs=10))  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from facerobust.core.embedding import embed
from facerobust.models.student import StudentNet


@dataclass
class DistillHistory:
    """Per-epoch losses, the best epoch and the train / validation sizes."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    n_train: int = 0
    n_val: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return asdict(self)


def distill_loss(pred: torch.Tensor, target: torch.Tensor, cos_weight: float = 1.0
                 ) -> torch.Tensor:
    """Mean squared descriptor error (relative to the target's mean square) + cosine term."""
    mse = (pred - target).pow(2).sum(1).mean() / target.pow(2).sum(1).mean().clamp_min(1e-12)
    return mse + cos_weight * (1 - F.cosine_similarity(pred, target, dim=1)).mean()


def _val_loss(student: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    student.eval()
    return float(distill_loss(embed(student, x), y))


@dataclass(frozen=True)
class TrainStudentOptions:
    """Distillation training: ``epochs`` of Adam at ``lr`` (cosine schedule) in batches of
    ``batch_size``, ``val_fraction`` of the chips held out to pick the best epoch, ``seed``."""

    epochs: int = 15
    batch_size: int = 32
    lr: float = 2e-3
    val_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not 0 < self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must be in (0, 0.5), got {self.val_fraction}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int, got {self.seed!r}")


def train_student(teacher: nn.Module, chips: torch.Tensor,
                  options: TrainStudentOptions | None = None, *,
                  student: StudentNet | None = None,
                  progress: bool = False) -> tuple[StudentNet, DistillHistory]:
    """Distil ``teacher`` into ``student`` (a default :class:`StudentNet` with the teacher's
    embedding size and metric) on ``chips``; returns the best-validation student."""
    o = options or TrainStudentOptions()
    epochs, batch_size, seed = o.epochs, o.batch_size, o.seed
    if chips.ndim != 4 or len(chips) < 10:
        raise ValueError(f"need >= 10 chips (N, 3, H, W) to distil, got {tuple(chips.shape)}")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    flipped = chips.flip(3)
    target, target_flip = embed(teacher, chips), embed(teacher, flipped)
    if student is None:
        student = StudentNet(embedding_dim=target.shape[1],
                             metric=getattr(teacher, "metric", "euclidean"),
                             threshold=float(getattr(teacher, "threshold", 0.6)))
    order = torch.randperm(len(chips), generator=g)
    n_val = max(1, int(round(o.val_fraction * len(chips))))
    val, train = order[:n_val], order[n_val:]
    opt = torch.optim.Adam(student.parameters(), lr=o.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    hist = DistillHistory(n_train=len(train), n_val=n_val)
    best, best_loss = copy.deepcopy(student.state_dict()), math.inf
    n_batches = math.ceil(len(train) / batch_size)
    bar = tqdm(total=epochs * n_batches, desc="distilling", file=sys.stderr,
               disable=not progress)
    for epoch in range(epochs):
        student.train()
        perm = train[torch.randperm(len(train), generator=g)]
        flip = torch.rand(len(perm), generator=g) < 0.5
        total = 0.0
        for i in range(n_batches):
            rows, f = perm[i * batch_size:(i + 1) * batch_size], flip[i * batch_size:
                                                                      (i + 1) * batch_size]
            x = torch.where(f[:, None, None, None], flipped[rows], chips[rows])
            y = torch.where(f[:, None], target_flip[rows], target[rows])
            loss = distill_loss(student(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
            bar.update(1)
        sched.step()
        hist.train_loss.append(total / n_batches)
        hist.val_loss.append(_val_loss(student, chips[val], target[val]))
        bar.set_postfix(loss=f"{hist.train_loss[-1]:.3f}", val=f"{hist.val_loss[-1]:.3f}")
        if hist.val_loss[-1] < best_loss:
            best_loss, hist.best_epoch = hist.val_loss[-1], epoch
            best = copy.deepcopy(student.state_dict())
    bar.close()
    student.load_state_dict(best)
    return student.eval(), hist
