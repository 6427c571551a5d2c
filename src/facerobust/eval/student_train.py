"""Distil dlib-resnet into a slim :class:`~facerobust.models.dlib_student.DlibStudent` on face
chips of people who are never judged (issue 29): the student is cut out of the teacher
(:func:`~facerobust.models.dlib_slim.slim_from_teacher`), then trained to reproduce the
teacher's descriptor of every augmented chip (flip, rotation, zoom, shift, brightness,
contrast, some gray), computed on the fly, with the distillation loss of
:func:`facerobust.models.distill.distill_loss`, AdamW and a one-cycle schedule. A killed run
resumes from its checkpoint (:mod:`facerobust.defenses.train_state`).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from facerobust.attacks.base import check_int, check_positive
from facerobust.defenses.augment import augment_batch
from facerobust.defenses.train_state import Resumable, TrainState, load_state, save_state
from facerobust.models.distill import distill_loss
from facerobust.models.dlib_resnet import DlibResNet
from facerobust.models.dlib_slim import SlimChoice, slim_from_teacher
from facerobust.models.dlib_student import DlibStudent


@dataclass(frozen=True)
class StudentRecipe:
    """The student's shape (:class:`SlimChoice` fields) and its distillation: ``epochs`` over
    the chips in batches of ``batch_size``, AdamW at peak ``lr`` (one-cycle), augmentation
    (``rotation`` degrees, ``zoom``, ``shift`` of the side, ``light`` for brightness and
    contrast, ``gray`` share of rows turned gray, ``mixup`` share of rows blended with another
    row: the teacher sees the same blend, so every blend is a new, exactly labelled input),
    bfloat16 autocast when ``bf16``; ``holdout_people`` of the training people are kept out
    of distillation to calibrate the threshold on faces the student never saw."""

    input_px: int = 112
    keep: tuple[int, ...] = (0, 3, 4, 7, 8, 10, 11, 13)
    fraction: tuple[float, ...] = (0.5, 0.5, 0.5, 0.75, 0.75)
    epochs: int = 120
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    rotation: float = 10.0
    zoom: float = 0.1
    shift: float = 0.06
    light: float = 0.3
    gray: float = 0.2
    mixup: float = 0.5
    holdout_people: int = 40
    bf16: bool = True
    seed: int = 0
    checkpoint: str | None = None
    checkpoint_seconds: float = 300.0
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            check_int(name, getattr(self, name))
        for name in ("lr", "checkpoint_seconds"):
            check_positive(name, getattr(self, name))
        if isinstance(self.holdout_people, bool) or not isinstance(self.holdout_people, int) \
                or self.holdout_people < 0:
            raise ValueError(f"holdout_people must be an int >= 0, got {self.holdout_people!r}")
        limits = {"weight_decay": 1.0, "rotation": 45.0, "zoom": 0.5, "shift": 0.5,
                  "light": 1.0, "gray": 1.0, "mixup": 1.0}
        for name, top in limits.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0 <= value <= top:
                raise ValueError(f"{name} must be a number in [0, {top:g}], got {value!r}")

    def choice(self) -> SlimChoice:
        """The student's shape."""
        return SlimChoice(self.input_px, tuple(self.keep), tuple(self.fraction))

    def to_dict(self) -> dict[str, Any]:
        """The recipe without run-only fields (what the checkpoint and the card record)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()
                if k not in ("checkpoint", "checkpoint_seconds", "progress")}


@dataclass
class StudentTraining:
    """What a distillation run did: steps, seconds, mean loss per epoch."""

    steps: int
    seconds: float
    loss_history: list[float]


def augment_rows(x: torch.Tensor, r: StudentRecipe, g: torch.Generator) -> torch.Tensor:
    """The recipe's augmentation of a batch of chips (seeded)."""
    y = augment_batch(x, g, max_degrees=r.rotation, zoom=r.zoom, flip=True,
                      brightness=r.light / 2, contrast=r.light, shift=r.shift)
    gray = (torch.rand(len(y), generator=g) < r.gray).view(-1, 1, 1, 1)
    y = torch.where(gray, y.mean(1, keepdim=True).expand_as(y), y)
    if r.mixup <= 0:
        return y
    mixed = (torch.rand(len(y), generator=g) < r.mixup).view(-1, 1, 1, 1)
    weight = torch.rand(len(y), generator=g).view(-1, 1, 1, 1)
    other = y[torch.randperm(len(y), generator=g)]
    return torch.where(mixed, weight * y + (1 - weight) * other, y)


def as_float(chips: torch.Tensor) -> torch.Tensor:
    """Chips in [0, 1] as float32 (uint8 chips are divided by 255)."""
    return chips.float() / 255 if chips.dtype == torch.uint8 else chips.float()


def _step(student: nn.Module, teacher: nn.Module, x: torch.Tensor, r: StudentRecipe
          ) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=r.bf16):
        with torch.no_grad():
            target = teacher(x).float()
        out = student(x).float()
    return distill_loss(out, target)


def distil_student(teacher: DlibResNet, chips: torch.Tensor, r: StudentRecipe
                   ) -> tuple[DlibStudent, StudentTraining]:
    """Cut the student out of ``teacher`` and distil it on ``chips`` (uint8 or float,
    N x 3 x 150 x 150) with recipe ``r``; resumes from ``r.checkpoint`` when it exists."""
    if chips.ndim != 4 or len(chips) < r.batch_size:
        raise ValueError(f"need >= {r.batch_size} chips (N, 3, 150, 150), got "
                         f"{tuple(chips.shape)}")
    torch.manual_seed(r.seed)
    g = torch.Generator().manual_seed(r.seed)
    sample = as_float(chips[torch.randperm(len(chips), generator=g)[:256]])
    student = slim_from_teacher(teacher, sample, r.choice())
    teacher = teacher.eval().requires_grad_(False)
    per_epoch = len(chips) // r.batch_size
    opt = torch.optim.AdamW(student.parameters(), lr=r.lr, weight_decay=r.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=r.lr, pct_start=0.05,
                                                total_steps=r.epochs * per_epoch)
    live = Resumable(r.to_dict(), student, opt, sched, g)
    st = (load_state(r.checkpoint, live) if r.checkpoint else None) or TrainState()
    bar = tqdm(total=r.epochs * per_epoch, initial=st.done, desc="distilling dlib-student",
               file=sys.stderr, disable=not r.progress)
    start, saved = time.perf_counter() - st.seconds, time.perf_counter()
    while st.epoch < r.epochs:
        if st.order is None:
            st.order = torch.randperm(len(chips), generator=g)
        student.train()
        while st.batch < per_epoch:
            rows = st.order[st.batch * r.batch_size:(st.batch + 1) * r.batch_size]
            loss = _step(student, teacher, augment_rows(as_float(chips[rows]), r, g), r)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            st.total, st.batch, st.done = st.total + float(loss.detach()), st.batch + 1, \
                st.done + 1
            bar.update(1)
            if r.checkpoint and time.perf_counter() - saved > r.checkpoint_seconds:
                st.seconds, saved = time.perf_counter() - start, time.perf_counter()
                save_state(r.checkpoint, st, live)
        st.history.append(st.total / per_epoch)
        bar.set_postfix(loss=f"{st.history[-1]:.4f}")
        st.epoch, st.batch, st.order, st.total = st.epoch + 1, 0, None, 0.0
    bar.close()
    if r.checkpoint:
        Path(r.checkpoint).unlink(missing_ok=True)
    return student.eval(), StudentTraining(st.done, round(time.perf_counter() - start, 1),
                                           st.history)
