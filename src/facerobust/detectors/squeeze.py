"""Feature squeezing (Xu, Evans and Qi, "Feature Squeezing: Detecting Adversarial Examples in
Deep Neural Networks", NDSS 2018), on face embeddings.

Each squeezer maps a chip to a simpler one (colour bit-depth reduction, a k x k median
filter). An adversarial perturbation is fragile, so the embedding moves more under squeezing
than a clean chip's does: the score is the largest distance, under the model's own metric,
between the embedding of ``x`` and of a squeezed ``x``. Bit-depth reduction has no useful
gradient, so the adaptive attack passes it straight through (BPDA, Athalye et al. 2018); the
median filter is differentiated as it is.

>>> det = FeatureSqueezing(model, bits=4, median=3).fit(clean)       # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facerobust.detectors.base import Detector, Features
from facerobust.detectors.embedding import (
    embedder_of,
    embedding_distance,
    output_from_embedding,
)


def reduce_bit_depth(x: torch.Tensor, bits: int, *, straight_through: bool = False
                     ) -> torch.Tensor:
    levels = 2 ** bits - 1
    squeezed = torch.round(x * levels) / levels
    return x + (squeezed - x).detach() if straight_through else squeezed


def median_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    """k x k median filter with reflected borders (same shape as ``x``)."""
    lo = (size - 1) // 2
    padded = F.pad(x, (lo, size - 1 - lo, lo, size - 1 - lo), mode="reflect")
    patches = padded.unfold(2, size, 1).unfold(3, size, 1)
    return patches.reshape(*patches.shape[:4], -1).median(dim=-1).values


class FeatureSqueezing(Detector):
    name = "squeeze"
    adaptive_kind = "bpda"

    def __init__(self, model: nn.Module, *, bits: int = 4, median: int = 3,
                 batch_size: int = 32) -> None:
        super().__init__(model, batch_size=batch_size)
        if not 1 <= int(bits) <= 7:
            raise ValueError(f"squeeze: bits must lie in 1..7, got {bits}")
        if int(median) < 0 or int(median) == 1:
            raise ValueError(f"squeeze: median must be 0 (off) or a window >= 2, got {median}")
        self.bits, self.median = int(bits), int(median)
        self.feature_key = f"squeeze-{self.bits}-{self.median}"

    def options(self) -> dict[str, Any]:
        return {"bits": self.bits, "median": self.median}

    def _distances(self, x: torch.Tensor, straight_through: bool
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """The embedding of ``x`` and its distance to each squeezed copy's embedding."""
        squeezed = [reduce_bit_depth(x, self.bits, straight_through=straight_through)]
        if self.median:
            squeezed.append(median_filter(x, self.median))
        embed = embedder_of(self.model)
        out = embed(torch.cat([x, *squeezed]))
        own, rest = out[: x.shape[0]], out[x.shape[0]:].split(x.shape[0])
        return own, torch.stack([embedding_distance(self.model, own, r) for r in rest], dim=1)

    def features_batch(self, x: torch.Tensor) -> Features:
        return self._distances(x, straight_through=False)[1]

    def score_batch(self, features: Features) -> torch.Tensor:
        return features.amax(dim=1)

    def guarded_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_fitted()
        own, distances = self._distances(x, straight_through=True)
        return output_from_embedding(self.model, x, own), distances.amax(dim=1)

    def fit_features(self, clean: Features, adversarial: Features | None = None,
                     **kwargs: Any) -> Detector:
        self.fitted = True  # nothing to learn: the threshold comes from calibrate()
        return self

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        self.fitted = True
