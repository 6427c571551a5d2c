"""The resumable state of :func:`facerobust.defenses.training.adversarial_finetune`: weights,
optimiser and schedule, random generator, position in the epoch and the figures so far, saved
to ``options.checkpoint`` every ``checkpoint_seconds`` so a killed run resumes where it was.

A checkpoint records the options it was made with; resuming under other options (the
checkpoint path, timing and progress aside) is a ``ValueError`` naming the first difference.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from facerobust.core.torch_file import read_torch_file

FORMAT = 1
IGNORED = ("checkpoint", "checkpoint_seconds", "progress", "max_seconds")


@dataclass
class TrainState:
    """Where a fine-tuning run is: ``epoch`` and the next ``batch`` of its ``order``."""

    epoch: int = 0
    batch: int = 0
    order: torch.Tensor | None = None
    done: int = 0
    total: float = 0.0
    seconds: float = 0.0
    history: list[float] = field(default_factory=list)
    val_history: list[dict[str, float]] = field(default_factory=list)
    best_state: dict[str, Any] | None = None
    best_epoch: int | None = None


@dataclass(frozen=True)
class Resumable:
    """The live objects a checkpoint saves and restores, and the run's options (as a dict)."""

    options: dict[str, Any]
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any  # a torch LR scheduler (state_dict / load_state_dict)
    generator: torch.Generator


def _recipe(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in IGNORED}


def save_state(path: str | Path, state: TrainState, live: Resumable) -> None:
    """Write the checkpoint atomically (a temporary file renamed over ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": FORMAT, "options": _recipe(live.options), "state": state.__dict__,
            "model": live.model.state_dict(), "optimizer": live.optimizer.state_dict(),
            "scheduler": live.scheduler.state_dict(), "generator": live.generator.get_state()}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)


def load_state(path: str | Path, live: Resumable) -> TrainState | None:
    """Restore a checkpoint into the given objects; ``None`` when ``path`` does not exist."""
    path = Path(path)
    if not path.is_file():
        return None
    blob = read_torch_file(path, "fine-tuning checkpoint", FORMAT)
    saved, now = blob["options"], _recipe(live.options)
    for key in sorted(set(saved) | set(now)):
        if saved.get(key) != now.get(key):
            raise ValueError(f"{path} was made with {key}={saved.get(key)!r}, this run has "
                             f"{key}={now.get(key)!r}; delete it or use the same options")
    live.model.load_state_dict(blob["model"])
    live.optimizer.load_state_dict(blob["optimizer"])
    live.scheduler.load_state_dict(blob["scheduler"])
    live.generator.set_state(blob["generator"])
    return TrainState(**blob["state"])
