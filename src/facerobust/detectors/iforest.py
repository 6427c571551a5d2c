"""Isolation Forest monitor of the embedding distribution (Liu et al., ICDM 2008).

Fitted (scikit-learn ``IsolationForest``) on genuine, L2-normalised embeddings; the score is
minus ``score_samples`` (short isolation paths = anomalous = high). A forest has no gradient,
so adaptive attacks use a **differentiable surrogate**: a small MLP fitted to reproduce the
forest's scores on the genuine embeddings and on noisy and interpolated copies of them. The
surrogate only steers the attack; success is always judged by the real forest.

>>> det = IsolationForestDetector(model, seed=0).fit(gallery_chips)   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch
from sklearn.ensemble import IsolationForest
from torch import nn

from facerobust.detectors.base import Detector, Features
from facerobust.detectors.embedding import EmbeddingDetector, unit_rows


class IsolationForestDetector(EmbeddingDetector):
    name = "iforest"
    adaptive_kind = "surrogate"

    def __init__(self, model: nn.Module, *, trees: int = 200, seed: int = 0,
                 batch_size: int = 32) -> None:
        super().__init__(model, batch_size=batch_size)
        if int(trees) < 1:
            raise ValueError(f"iforest: trees must be >= 1, got {trees}")
        self.trees, self.seed = int(trees), int(seed)
        self.train_embeddings: torch.Tensor | None = None

    def options(self) -> dict[str, Any]:
        return {"trees": self.trees, "seed": self.seed}

    def fit_features(self, clean: Features, adversarial: Features | None = None,
                     **kwargs: Any) -> Detector:
        z = unit_rows(clean.detach().double()).numpy()
        self.forest = IsolationForest(n_estimators=self.trees, random_state=self.seed).fit(z)
        self.train_embeddings = clean.detach().float().clone()
        self.surrogate = self._fit_surrogate(unit_rows(clean.detach().float()))
        self.fitted = True
        return self

    def score_batch(self, features: Features) -> torch.Tensor:
        z = unit_rows(features.detach().double()).cpu().numpy()
        return torch.as_tensor(-self.forest.score_samples(z), dtype=torch.float32)

    def adaptive_score_features(self, z: torch.Tensor) -> torch.Tensor:
        return self.surrogate(unit_rows(z))[:, 0] * self._scale + self._shift

    def _fit_surrogate(self, z: torch.Tensor) -> nn.Module:
        g = torch.Generator().manual_seed(self.seed)
        points = [z]
        for sigma in (0.02, 0.05, 0.1, 0.2):
            points.append(unit_rows(z + sigma * torch.randn(z.shape, generator=g)))
        mix = torch.rand(z.shape[0], 1, generator=g)
        points.append(unit_rows(mix * z + (1 - mix) * z[torch.randperm(z.shape[0], generator=g)]))
        inputs = torch.cat(points)
        target = torch.as_tensor(-self.forest.score_samples(inputs.double().numpy()),
                                 dtype=torch.float32)
        self._shift, self._scale = float(target.mean()), float(target.std()) + 1e-6
        target = (target - self._shift) / self._scale
        torch.manual_seed(self.seed)
        net = nn.Sequential(nn.Linear(z.shape[1], 128), nn.Tanh(), nn.Linear(128, 1))
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        for _ in range(400):
            opt.zero_grad()
            loss = (net(inputs)[:, 0] - target).pow(2).mean()
            loss.backward()
            opt.step()
        self.surrogate_fit = 1.0 - float(loss.detach())  # R^2 on its training points
        return net.eval().requires_grad_(False)

    def state(self) -> dict[str, Any]:
        self._check_fitted()
        return {"train_embeddings": self.train_embeddings}

    def load_state(self, state: dict[str, Any]) -> None:
        self.fit_features(state["train_embeddings"])
