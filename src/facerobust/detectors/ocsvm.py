"""One-Class SVM monitor of the embedding distribution (Schölkopf et al., 2001).

Fitted (scikit-learn ``OneClassSVM``, RBF kernel) on genuine, L2-normalised embeddings; the
score is minus the SVM's decision function, so chips whose embedding falls outside the
support of genuine faces score high. The RBF decision function is re-implemented in torch from
the fitted support vectors, so the adaptive attack differentiates the *exact* detector.

>>> det = OneClassSVMDetector(model, nu=0.1).fit(gallery_chips)      # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.svm import OneClassSVM

from facerobust.detectors.base import Detector, Features
from facerobust.detectors.embedding import EmbeddingDetector, unit_rows


class OneClassSVMDetector(EmbeddingDetector):
    name = "ocsvm"

    def __init__(self, model: torch.nn.Module, *, nu: float = 0.1, gamma: float | str = "scale",
                 batch_size: int = 32) -> None:
        super().__init__(model, batch_size=batch_size)
        if not 0 < float(nu) <= 1:
            raise ValueError(f"ocsvm: nu must lie in (0, 1], got {nu}")
        if not (gamma == "scale" or (isinstance(gamma, (int, float)) and gamma > 0)):
            raise ValueError(f"ocsvm: gamma must be 'scale' or a positive number, got {gamma!r}")
        self.nu, self.gamma = float(nu), gamma
        self.train_embeddings: torch.Tensor | None = None

    def options(self) -> dict[str, Any]:
        return {"nu": self.nu, "gamma": self.gamma}

    def fit_features(self, clean: Features, adversarial: Features | None = None,
                     **kwargs: Any) -> Detector:
        z = unit_rows(clean.detach().double())
        svm = OneClassSVM(kernel="rbf", nu=self.nu, gamma=self.gamma).fit(z.numpy())
        self.train_embeddings = clean.detach().float().clone()
        self._support = torch.as_tensor(svm.support_vectors_, dtype=torch.float64)
        self._dual = torch.as_tensor(svm.dual_coef_[0], dtype=torch.float64)
        self._offset = float(svm.intercept_[0])
        self._gamma = float(svm._gamma)
        self.svm = svm
        self.fitted = True
        return self

    def score_batch(self, features: Features) -> torch.Tensor:
        z = unit_rows(features.double())
        sq = torch.cdist(z, self._support.to(z.device)).pow(2)
        decision = torch.exp(-self._gamma * sq) @ self._dual.to(z.device) + self._offset
        return (-decision).float()

    def sklearn_scores(self, features: Features) -> np.ndarray:
        """The same score straight from scikit-learn (the reference for the torch version)."""
        z = unit_rows(features.detach().double()).numpy()
        return -self.svm.decision_function(z)

    def state(self) -> dict[str, Any]:
        self._check_fitted()
        return {"train_embeddings": self.train_embeddings}

    def load_state(self, state: dict[str, Any]) -> None:
        self.fit_features(state["train_embeddings"])
