"""Per-identity distance-to-gallery monitor.

A genuine probe lands close to some enrolled photo of its identity; many adversarial probes
(especially targeted ones) land in a region between identities. The score is the distance from
the probe's embedding to the nearest enrolled embedding, divided by that identity's own spread
(the median leave-one-out nearest-neighbour distance inside its gallery), so identities with a
loose gallery are not flagged more often. Differentiable: the adaptive attack uses it as is.

>>> det = GalleryDistance(model); det.enroll(gallery_chips, labels)   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from facerobust.detectors.base import Detector, Features
from facerobust.detectors.embedding import EmbeddingDetector, metric_of


def _pairwise(a: torch.Tensor, b: torch.Tensor, metric: str) -> torch.Tensor:
    if metric == "cosine":
        return 1.0 - nn.functional.normalize(a, dim=1) @ nn.functional.normalize(b, dim=1).T
    return torch.cdist(a, b)


class GalleryDistance(EmbeddingDetector):
    name = "gallery"

    def __init__(self, model: nn.Module, *, batch_size: int = 32) -> None:
        super().__init__(model, batch_size=batch_size)
        self.gallery: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None

    def enroll(self, chips: torch.Tensor, labels: torch.Tensor | np.ndarray) -> GalleryDistance:
        return self.enroll_features(self.features(chips), labels)

    def enroll_features(self, features: Features, labels: torch.Tensor | np.ndarray
                        ) -> GalleryDistance:
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        if labels.ndim != 1 or labels.shape[0] != features.shape[0]:
            raise ValueError(f"gallery: {features.shape[0]} embeddings but labels of shape "
                             f"{tuple(labels.shape)}")
        self.gallery, self.labels = features.detach().float().clone(), labels
        d = _pairwise(self.gallery, self.gallery, metric_of(self.model))
        d.fill_diagonal_(float("inf"))
        same = labels[:, None] == labels[None, :]
        nearest_same = torch.where(same, d, torch.full_like(d, float("inf"))).amin(dim=1)
        spread = torch.ones(int(labels.max()) + 1)
        for identity in labels.unique():
            values = nearest_same[labels == identity]
            values = values[torch.isfinite(values)]
            if values.numel():
                spread[identity] = values.median().clamp_min(1e-6)
        self.spread = spread
        return self

    def fit_features(self, clean: Features, adversarial: Features | None = None,
                     **kwargs: Any) -> Detector:
        if self.gallery is None:
            raise ValueError("gallery: enroll(chips, labels) before fit")
        self.fitted = True
        return self

    def score_batch(self, features: Features) -> torch.Tensor:
        if self.gallery is None or self.labels is None:
            raise ValueError("gallery: enroll(chips, labels) before scoring")
        d = _pairwise(features, self.gallery.to(features.device), metric_of(self.model))
        nearest, which = d.min(dim=1)
        return nearest / self.spread.to(features.device)[self.labels.to(features.device)[which]]

    def leave_one_out_scores(self) -> np.ndarray:
        """Each enrolled template's score against the rest of the gallery: clean scores to
        calibrate on when the gallery is all there is (the identity spreads are the full
        gallery's). Templates of single-template identities are left out."""
        if self.gallery is None or self.labels is None:
            raise ValueError("gallery: enroll(chips, labels) before scoring")
        with torch.no_grad():
            d = _pairwise(self.gallery, self.gallery, metric_of(self.model))
            d.fill_diagonal_(float("inf"))
            nearest, which = d.min(dim=1)
            scores = nearest / self.spread[self.labels[which]]
        counts = torch.bincount(self.labels)
        keep = counts[self.labels] >= 2
        return scores[keep].numpy().astype(np.float64)

    def state(self) -> dict[str, Any]:
        self._check_fitted()
        return {"gallery": self.gallery, "labels": self.labels}

    def load_state(self, state: dict[str, Any]) -> None:
        self.enroll_features(state["gallery"], state["labels"])
        self.fitted = True
