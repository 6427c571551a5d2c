"""Shared parts of the detectors that look at the victim's face embedding."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from facerobust.detectors.base import Detector, Features
from facerobust.models.base import pair_distance


def embedder_of(model: nn.Module) -> nn.Module:
    """The face-embedding network: ``model.embedder`` of an identification model, else itself."""
    return getattr(model, "embedder", model)


def output_from_embedding(model: nn.Module, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The model's output given the embedding ``z`` of ``x`` (no second pass when the model
    is an embedder plus a head, or the embedder itself)."""
    head = getattr(model, "head", None)
    if isinstance(head, nn.Module) and embedder_of(model) is not model:
        return head(z)
    return z if embedder_of(model) is model else model(x)


def metric_of(model: nn.Module) -> str:
    metric = getattr(embedder_of(model), "metric", "euclidean")
    return metric if metric in ("euclidean", "cosine") else "euclidean"


def embedding_distance(model: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row distance of two embedding batches under the model's own metric."""
    return pair_distance(a, b, metric_of(model))  # type: ignore[arg-type]


def unit_rows(z: torch.Tensor) -> torch.Tensor:
    return nn.functional.normalize(z, dim=1)


class EmbeddingDetector(Detector):
    """A detector whose features are the victim's embeddings (one forward pass per chip)."""

    feature_key = "embedding"

    def features_batch(self, x: torch.Tensor) -> Features:
        return embedder_of(self.model)(x)

    def adaptive_score_features(self, z: torch.Tensor) -> torch.Tensor:
        return self.score_batch(z)

    def guarded_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_fitted()
        z = self.features_batch(x)
        return output_from_embedding(self.model, x, z), self.adaptive_score_features(z)

    def fit(self, clean: torch.Tensor, adversarial: torch.Tensor | None = None,
            **kwargs: Any) -> Detector:
        return self.fit_features(self.features(clean), None, **kwargs)
