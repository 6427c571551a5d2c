"""The gallery-distance detector fitted on the gate's own gallery (``detectors = ["gallery"]``).

A genuine probe lands near an enrolled template of its identity; many adversarial probes land
between identities (:class:`facerobust.detectors.gallery.GalleryDistance`). The gate fits the
detector on its database's templates when it starts and again whenever the gallery changes
(any gate process sees another's enrollments: the gallery's version is read per decision), and
calibrates the threshold on the templates' leave-one-out scores at ``gallery_fpr``. Until the
gallery holds :data:`MIN_CALIBRATION` such scores the detector is inactive and says so.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import torch
from torch import nn

from facerobust.detectors.base import threshold_at_fpr
from facerobust.detectors.gallery import GalleryDistance
from facerobust.detectors.registry import DetectorScorer
from facerobust.service.storage import Store

GALLERY = "gallery"  # the name in ``gate.detectors``
MIN_CALIBRATION = 10  # leave-one-out scores needed before the detector flags anything
LOG = logging.getLogger("facerobust.gate")


def fit_gallery(model: nn.Module, names: list[str], embeddings: np.ndarray,
                fpr: float) -> DetectorScorer | None:
    """The detector fitted on ``embeddings`` of ``names`` and calibrated at ``fpr`` (None
    while fewer than :data:`MIN_CALIBRATION` leave-one-out scores exist)."""
    if len(names) < 2:
        return None
    index = {n: i for i, n in enumerate(dict.fromkeys(names))}
    detector = GalleryDistance(model)
    detector.enroll_features(torch.from_numpy(embeddings), np.array([index[n] for n in names]))
    detector.fitted = True
    scores = detector.leave_one_out_scores()
    if scores.size < MIN_CALIBRATION:
        return None
    detector.threshold = threshold_at_fpr(scores, fpr)
    detector.score_scale = float(np.std(scores)) or 1.0
    return DetectorScorer(detector)


class GalleryGuard:
    """Gate scorer: chips -> ``{"score", "threshold", "reject", "active"}``, refitted when the
    store's gallery version changes."""

    def __init__(self, store: Store, model: nn.Module, fpr: float) -> None:
        if not 0 < fpr < 1:
            raise ValueError(f"gate.gallery_fpr must lie strictly between 0 and 1, got {fpr}")
        self.store, self.model, self.fpr = store, model, fpr
        self.version: tuple[int, int] | None = None
        self.scorer: DetectorScorer | None = None
        self._lock = threading.Lock()
        self.refresh()

    def refresh(self) -> None:
        """Refit when the gallery changed since the last fit."""
        version = self.store.gallery_version()
        with self._lock:
            if version == self.version:
                return
            names, embeddings = self.store.templates()
            self.scorer = fit_gallery(self.model, names, embeddings, self.fpr)
            self.version = version
        LOG.info("gallery detector %s on %d templates", "fitted" if self.scorer else
                 "inactive (too few identities with 2+ templates)", len(names))

    def __call__(self, chips: torch.Tensor) -> dict[str, Any]:
        self.refresh()
        scorer = self.scorer
        if scorer is None:
            return {"active": False, "reject": False}
        return {**scorer(chips), "active": True}


__all__ = ["GALLERY", "MIN_CALIBRATION", "GalleryGuard", "fit_gallery"]
