"""The detector API shared by every adversarial-input detector.

A detector scores chips (float NCHW RGB in [0, 1]): **higher = more adversarial**. It is fitted
on clean chips (and, for supervised detectors, adversarial ones), calibrated to a threshold at a
requested false-positive rate on clean data, and flags chips whose score exceeds it.

Every detector splits its work into an expensive ``features(x)`` (model passes) and a cheap
``score_features(f)``, so a study scores many image sets and several detector variants from one
set of forward passes. ``adaptive_score(x)`` is a differentiable score for adaptive attacks:
exact where the detector is differentiable, otherwise a straight-through (BPDA) or fitted
surrogate, as each detector documents (``adaptive_kind``).

>>> det = build_detector("squeeze", model)                       # doctest: +SKIP
>>> det.fit(clean_chips).calibrate(clean_chips, fpr=0.05)         # doctest: +SKIP
>>> det.detect(probe_chips)                                       # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch
from torch import nn

Features = Any  # a tensor or a list of tensors with one row per image


def model_sha256(model: nn.Module) -> str:
    """sha256 over a model's parameters and buffers (names, shapes and values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def check_chips(x: Any, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise TypeError(f"{what} must be a float tensor (N, 3, H, W) in [0, 1], got "
                        f"{type(x).__name__} {tuple(getattr(x, 'shape', ()))}")
    if x.shape[0] == 0:
        raise ValueError(f"{what} is an empty batch")
    return x


def threshold_at_fpr(clean_scores: np.ndarray, fpr: float) -> float:
    """The smallest threshold whose false-positive rate on ``clean_scores`` is <= ``fpr``
    (a chip is flagged when its score is strictly above the threshold)."""
    if not 0 < fpr < 1:
        raise ValueError(f"fpr must lie strictly between 0 and 1, got {fpr}")
    scores = np.sort(np.asarray(clean_scores, dtype=np.float64))
    if scores.size == 0:
        raise ValueError("no clean scores to calibrate the threshold on")
    allowed = int(math.floor(fpr * scores.size))  # clean chips that may lie above it
    return float(scores[scores.size - 1 - allowed])


class Detector(ABC):
    """Common detector behaviour; subclasses set ``name`` and implement the abstract parts."""

    name: str = ""
    supervised: bool = False  # fit needs adversarial examples
    adaptive_kind: str = "exact"  # "exact" | "bpda" | "surrogate"
    feature_key: str = ""  # detectors with equal keys share features

    def __init__(self, model: nn.Module, *, batch_size: int = 32) -> None:
        self.model = model
        self.batch_size = int(batch_size)
        self.threshold: float | None = None
        self.score_scale = 1.0  # spread of clean scores: scales the adaptive attack's term
        self.fitted = False

    # ------------------------------------------------------------------ features and scores
    @abstractmethod
    def features_batch(self, x: torch.Tensor) -> Features:
        """Features of one batch (may keep the autograd graph when x requires grad)."""

    @abstractmethod
    def score_batch(self, features: Features) -> torch.Tensor:
        """Scores (N,) of one batch of features (differentiable where the detector is)."""

    def features(self, x: torch.Tensor) -> Features:
        x = check_chips(x, f"{self.name} input")
        parts = []
        with torch.no_grad():
            for i in range(0, x.shape[0], self.batch_size):
                parts.append(self.features_batch(x[i:i + self.batch_size]))
        return concat_features(parts)

    def score_features(self, features: Features) -> np.ndarray:
        self._check_fitted()
        with torch.no_grad():
            return self.score_batch(features).detach().cpu().numpy().astype(np.float64)

    def score(self, x: torch.Tensor) -> np.ndarray:
        return self.score_features(self.features(x))

    def adaptive_score(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable score for adaptive attacks (override for BPDA / surrogates)."""
        return self.guarded_forward(x)[1]

    def guarded_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's output and the differentiable score of ``x``; detectors that see the
        model's own activations override this to share one forward pass."""
        self._check_fitted()
        return self.model(x), self.score_batch(self.features_batch(x))

    # --------------------------------------------------------------------- fit and calibrate
    def fit(self, clean: torch.Tensor, adversarial: torch.Tensor | None = None) -> Detector:
        clean_f = self.features(clean)
        adv_f = None if adversarial is None else self.features(adversarial)
        return self.fit_features(clean_f, adv_f)

    @abstractmethod
    def fit_features(self, clean: Features, adversarial: Features | None = None,
                     **kwargs: Any) -> Detector:
        """Fit from precomputed features."""

    def enroll_features(self, features: Features, labels: torch.Tensor | np.ndarray
                        ) -> Detector:
        """Enrolled identities (gallery features and labels); unused by most detectors."""
        return self

    def calibrate_scores(self, clean_scores: np.ndarray, fpr: float) -> float:
        self.threshold = threshold_at_fpr(clean_scores, fpr)
        spread = float(np.std(clean_scores))
        self.score_scale = spread if spread > 1e-12 else 1.0
        return self.threshold

    def calibrate(self, clean: torch.Tensor, fpr: float) -> float:
        """Set (and return) the threshold at false-positive rate ``fpr`` on ``clean``."""
        return self.calibrate_scores(self.score(clean), fpr)

    def detect(self, x: torch.Tensor, threshold: float | None = None) -> np.ndarray:
        """Boolean mask: True where the chip is flagged as adversarial."""
        limit = self.threshold if threshold is None else float(threshold)
        if limit is None:
            raise ValueError(f"{self.name}: no threshold; call calibrate(clean, fpr) or pass one")
        return self.score(x) > limit

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise ValueError(f"detector {self.name!r} is not fitted: call fit(...) first")

    # ---------------------------------------------------------------------------- save/load
    def options(self) -> dict[str, Any]:
        """Constructor options (JSON values) that rebuild this detector."""
        return {}

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """Fitted state (tensors / arrays / numbers)."""

    @abstractmethod
    def load_state(self, state: dict[str, Any]) -> None:
        """Restore a fitted state."""


def concat_features(parts: list[Features]) -> Features:
    if not parts:
        raise ValueError("no features")
    if isinstance(parts[0], torch.Tensor):
        return torch.cat(parts)
    return [torch.cat([p[i] for p in parts]) for i in range(len(parts[0]))]


def select_features(features: Features, rows: np.ndarray | torch.Tensor) -> Features:
    idx = torch.as_tensor(rows, dtype=torch.long)
    if isinstance(features, torch.Tensor):
        return features[idx]
    return [f[idx] for f in features]


def feature_count(features: Features) -> int:
    return int(features.shape[0] if isinstance(features, torch.Tensor) else features[0].shape[0])
