"""Adaptive attacks on a model guarded by a detector (Carlini and Wagner, "Adversarial Examples
Are Not Easily Detected", AISec 2017).

:class:`GuardedModel` runs the victim and the detector's differentiable score on the same chips
and concatenates them; :class:`EvadeDetector` wraps the attack goal: a sample succeeds only when
the goal is met *and* the score is below the detector's threshold, and the loss adds a hinge that
pushes the score under it. Any attack of the registry runs on the pair unchanged. Success is
re-judged afterwards by the real detector (BPDA and surrogate scores only steer the attack).

>>> guarded = GuardedModel(ident_model, detector)                       # doctest: +SKIP
>>> crit = EvadeDetector(Misclassification(labels), detector.threshold,
...                      scale=detector.score_scale, weight=1.0)          # doctest: +SKIP
>>> PGD(steps=20)(guarded, chips, crit, epsilons=[4/255])                # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from facerobust.attacks.criteria import Criterion
from facerobust.detectors.base import Detector


class GuardedModel(nn.Module):
    """``model(x)`` with the detector's differentiable score appended as the last column."""

    def __init__(self, model: nn.Module, detector: Detector) -> None:
        super().__init__()
        self.model, self.detector = model, detector

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.detector.model is self.model:  # one pass for the model and the detector
            output, score = self.detector.guarded_forward(x)
        else:
            output, score = self.model(x), self.detector.adaptive_score(x)
        return torch.cat([output, score[:, None].to(output.dtype)], dim=1)


class EvadeDetector(Criterion):
    """``goal`` on the model's columns and ``score < threshold`` on the last one."""

    def __init__(self, goal: Criterion, threshold: float, *, scale: float = 1.0,
                 weight: float = 1.0, slack: float = 0.1, confidence: float = 0.0) -> None:
        if scale <= 0 or weight < 0:
            raise ValueError(f"EvadeDetector: scale must be > 0 and weight >= 0, got "
                             f"{scale}, {weight}")
        self.goal, self.threshold = goal, float(threshold)
        self.scale, self.weight, self.slack = float(scale), float(weight), float(slack)
        self.confidence = float(confidence)  # > 0: a surrogate score must clear the threshold
        self.limit = self.threshold - self.confidence * self.scale

    def _split(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return outputs[:, :-1], outputs[:, -1]

    def check(self, outputs: torch.Tensor) -> None:
        if outputs.ndim != 2 or outputs.shape[1] < 2:
            raise ValueError(f"EvadeDetector needs model outputs plus a score column, got "
                             f"{tuple(outputs.shape)}")
        self.goal.check(self._split(outputs)[0])

    def margin(self, outputs: torch.Tensor) -> torch.Tensor:
        out, score = self._split(outputs)
        return torch.minimum(self.goal.margin(out), (self.limit - score) / self.scale)

    def is_adversarial(self, outputs: torch.Tensor) -> torch.Tensor:
        out, score = self._split(outputs)
        return self.goal.is_adversarial(out) & (score < self.limit)

    def loss(self, outputs: torch.Tensor) -> torch.Tensor:
        out, score = self._split(outputs)
        excess = torch.relu((score - self.limit) / self.scale + self.slack)
        return self.goal.loss(out) - self.weight * excess

    def subset(self, idx: torch.Tensor) -> EvadeDetector:
        return EvadeDetector(self.goal.subset(idx), self.threshold, scale=self.scale,
                             weight=self.weight, slack=self.slack, confidence=self.confidence)

    def __len__(self) -> int:
        return len(self.goal)

    def describe(self) -> dict[str, Any]:
        return {**self.goal.describe(), "detector_threshold": self.threshold,
                "weight": self.weight}
