"""The model contract shared by every face network in facerobust.

Input: float tensor NCHW, RGB, values in [0, 1], the *canonical aligned chip*
(150x150, dlib 5-point alignment with padding 0.25 -- see ``facerobust.data.align``), on the
model's device. Each model owns its normalisation (and any resampling to its own geometry)
inside ``forward``, so gradients always reach the canonical chip.

``forward(x)`` returns the model's raw descriptor; ``embed(x)`` the L2-normalised one.
Verification compares two raw descriptors with :meth:`FaceModel.distance` (lower = more
alike) and accepts a pair when ``distance <= threshold``.
"""

from __future__ import annotations

from typing import Literal, TypeVar, overload

import numpy as np
import torch
from torch import nn

Metric = Literal["euclidean", "cosine"]
CANONICAL_SIZE = 150


class FaceModel(nn.Module):
    """Base class: subclasses set the attributes and implement ``forward``."""

    name: str = "face-model"
    input_size: tuple[int, int] = (CANONICAL_SIZE, CANONICAL_SIZE)
    embedding_dim: int = 0
    metric: Metric = "cosine"
    threshold: float = 0.5

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings of a batch of canonical chips."""
        return nn.functional.normalize(self(x), dim=1)

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Row-wise verification distance between raw descriptors (lower = same person).

        Euclidean models: ``||a - b||``; cosine models: ``1 - cos(a, b)``.
        """
        return pair_distance(a, b, self.metric)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a precise ``ValueError``/``TypeError`` when ``x`` breaks the input contract."""
        check_chip_batch(x, self.input_size)


_Scores = TypeVar("_Scores", np.ndarray, torch.Tensor)


@overload
def accepts(distance: _Scores, threshold: float | _Scores) -> _Scores: ...
@overload
def accepts(distance: float, threshold: float) -> bool: ...
def accepts(distance: float | np.ndarray | torch.Tensor,
            threshold: float | np.ndarray | torch.Tensor) -> bool | np.ndarray | torch.Tensor:
    """The one verification rule: a probe matches a template when ``distance <= threshold``
    (a float, or elementwise on an array or tensor, with one threshold or one per row). Every
    decision in facerobust calls it."""
    if isinstance(distance, (np.ndarray, torch.Tensor)):
        return distance <= threshold
    return bool(float(distance) <= float(threshold))


def pair_distance(a: torch.Tensor, b: torch.Tensor, metric: Metric) -> torch.Tensor:
    """Row-wise distance for ``metric`` (``euclidean`` or ``cosine``)."""
    if a.shape != b.shape:
        raise ValueError(f"descriptor shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    if metric == "euclidean":
        return (a - b).norm(dim=1)
    if metric == "cosine":
        return 1.0 - nn.functional.cosine_similarity(a, b, dim=1)
    raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")


def check_chip_batch(x: torch.Tensor, size: tuple[int, int] | None = None) -> None:
    """Validate a batch against the tensor contract (float NCHW RGB in [0, 1])."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"expected a float tensor in [0, 1], got dtype {x.dtype}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected shape (N, 3, H, W), got {tuple(x.shape)}")
    if size is not None and tuple(x.shape[2:]) != tuple(size):
        raise ValueError(f"expected chips of size {tuple(size)}, got {tuple(x.shape[2:])}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"inputs must lie in [0, 1], got min {x.min().item():.4f} max {x.max().item():.4f}"
        )
