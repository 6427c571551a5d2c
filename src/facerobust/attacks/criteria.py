"""Attack goals as immutable, batched criterion objects (Foolbox-style).

A criterion knows, for a batch of model outputs, which rows are adversarial, a per-sample loss
that gradient attacks *maximise*, and a per-sample ``margin`` that is ``> 0`` exactly when the
row is adversarial (used by CW, DeepFool, Square and the minimal-epsilon search).

Verification (model outputs = raw descriptors):

* :class:`Dodging` -- the probe must stop matching its own identity (``distance > threshold``).
* :class:`Impersonation` -- the probe must match a chosen victim (``distance <= threshold``).

Identification (model outputs = logits of a classifier head over enrolled identities):

* :class:`Misclassification` -- ``argmax != label``.
* :class:`TargetedMisclassification` -- ``argmax == target``.

>>> import torch
>>> crit = Dodging(torch.zeros(2, 128), threshold=0.6, metric="euclidean")
>>> crit.is_adversarial(torch.ones(2, 128)).tolist()
[True, True]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from facerobust.models.base import FaceModel, Metric, accepts

_METRICS = ("euclidean", "cosine")


def _distance(a: torch.Tensor, b: torch.Tensor, metric: str) -> torch.Tensor:
    if metric == "euclidean":
        # the tiny constant keeps the gradient finite when a == b
        return ((a - b).pow(2).sum(dim=1) + 1e-12).sqrt()
    return 1.0 - nn.functional.cosine_similarity(a, b, dim=1)


def _index(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return t[idx.to(t.device)]


def _check_threshold(threshold: float | torch.Tensor, n: int) -> None:
    """A verification threshold is one number > 0, or a (N,) tensor of them (per row)."""
    if isinstance(threshold, torch.Tensor) and threshold.ndim > 0:
        if threshold.shape != (n,):
            raise ValueError(f"threshold: one per row needs shape ({n},), got "
                             f"{tuple(threshold.shape)}")
        if not bool((threshold > 0).all()):
            raise ValueError(f"threshold must be > 0 in every row, got min "
                             f"{float(threshold.min())}")
        return
    if not float(threshold) > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")


class Criterion:
    """Base class; subclasses are frozen dataclasses."""

    def check(self, outputs: torch.Tensor) -> None:
        raise NotImplementedError

    def is_adversarial(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.margin(outputs) > 0

    def loss(self, outputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def margin(self, outputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def subset(self, idx: torch.Tensor) -> Criterion:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary (no tensors)."""
        return {"goal": type(self).__name__, "n": len(self)}


@dataclass(frozen=True)
class _Verification(Criterion):
    reference: torch.Tensor
    threshold: float | torch.Tensor  # one for every row, or one per row (N,)
    metric: Metric = "euclidean"

    def __post_init__(self) -> None:
        if not isinstance(self.reference, torch.Tensor) or self.reference.ndim != 2:
            shape = getattr(self.reference, "shape", None)
            raise ValueError(
                f"{type(self).__name__}: descriptors must be a (N, D) tensor, got shape {shape}"
            )
        if self.metric not in _METRICS:
            raise ValueError(f"metric must be 'euclidean' or 'cosine', got {self.metric!r}")
        _check_threshold(self.threshold, len(self.reference))
        object.__setattr__(self, "reference", self.reference.detach())

    @classmethod
    def for_model(cls, model: nn.Module, reference: torch.Tensor) -> Any:
        """Take ``metric`` and ``threshold`` from a FaceModel (``model.metric``/``threshold``)."""
        for attr in ("metric", "threshold"):
            if not hasattr(model, attr):
                raise ValueError(
                    f"{cls.__name__}.for_model needs a FaceModel with .metric and .threshold; "
                    f"{type(model).__name__} has no {attr!r}"
                )
        face = cast(FaceModel, model)  # duck-typed: any module with .metric and .threshold
        return cls(reference, threshold=float(face.threshold), metric=face.metric)

    def __len__(self) -> int:
        return int(self.reference.shape[0])

    def check(self, outputs: torch.Tensor) -> None:
        if outputs.ndim != 2:
            raise ValueError(
                f"{type(self).__name__} needs (N, D) descriptors from the model, got output "
                f"shape {tuple(outputs.shape)}"
            )
        if outputs.shape[0] != len(self):
            raise ValueError(
                f"{type(self).__name__} holds {len(self)} descriptors but the batch has "
                f"{outputs.shape[0]} images"
            )
        if outputs.shape[1] != self.reference.shape[1]:
            raise ValueError(
                f"{type(self).__name__} descriptors are {self.reference.shape[1]}-d but the model "
                f"outputs {outputs.shape[1]}-d"
            )

    def distance(self, outputs: torch.Tensor) -> torch.Tensor:
        return _distance(outputs, self.reference.to(outputs.device, outputs.dtype), self.metric)

    def subset(self, idx: torch.Tensor) -> Any:
        thr = self.threshold
        return type(self)(_index(self.reference, idx),
                          _index(thr, idx) if isinstance(thr, torch.Tensor) else thr, self.metric)

    def thresholds(self, like: torch.Tensor) -> float | torch.Tensor:
        """The threshold as a float, or per row on ``like``'s device and dtype."""
        thr = self.threshold
        return thr.to(like.device, like.dtype) if isinstance(thr, torch.Tensor) else thr

    def describe(self) -> dict[str, Any]:
        thr = self.threshold
        shown = thr.tolist() if isinstance(thr, torch.Tensor) else float(thr)
        return {**super().describe(), "threshold": shown, "metric": self.metric}


@dataclass(frozen=True)
class Dodging(_Verification):
    """Verification dodging: success when ``distance(model(x_adv), reference) > threshold``.

    ``reference`` (N, D) holds raw descriptors of each probe's own identity (ideally from a
    different photo of the same person).
    """

    def is_adversarial(self, outputs: torch.Tensor) -> torch.Tensor:
        d = self.distance(outputs)
        return ~accepts(d, self.thresholds(d))

    def loss(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.distance(outputs)

    def margin(self, outputs: torch.Tensor) -> torch.Tensor:
        d = self.distance(outputs)
        return d - self.thresholds(d)


@dataclass(frozen=True, init=False)
class Impersonation(_Verification):
    """Verification impersonation: success when ``distance(model(x_adv), target) <= threshold``.

    ``target`` (N, D) holds raw descriptors of the victim each probe must match (stored as
    ``reference``; ``Impersonation(target, 0.6)`` and ``Impersonation(target=t, ...)`` both work).
    """

    def __init__(
        self,
        target: torch.Tensor | None = None,
        threshold: float | torch.Tensor = 0.0,
        metric: Metric = "euclidean",
        *,
        reference: torch.Tensor | None = None,
    ) -> None:
        if (target is None) == (reference is None):
            raise ValueError("Impersonation needs exactly one of target= or reference=")
        object.__setattr__(self, "reference", target if target is not None else reference)
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "metric", metric)
        self.__post_init__()

    @property
    def target(self) -> torch.Tensor:
        return self.reference

    def is_adversarial(self, outputs: torch.Tensor) -> torch.Tensor:
        d = self.distance(outputs)
        return accepts(d, self.thresholds(d))

    def loss(self, outputs: torch.Tensor) -> torch.Tensor:
        return -self.distance(outputs)

    def margin(self, outputs: torch.Tensor) -> torch.Tensor:
        # tiny offset so that margin > 0  <=>  distance <= threshold
        d = self.distance(outputs)
        return self.thresholds(d) - d + 1e-12


@dataclass(frozen=True)
class _Classification(Criterion):
    labels: torch.Tensor

    def __post_init__(self) -> None:
        t = self.labels
        if not isinstance(t, torch.Tensor) or t.ndim != 1 or t.is_floating_point():
            raise ValueError(
                f"{type(self).__name__}: labels must be a 1-D integer tensor, got "
                f"{getattr(t, 'dtype', type(t).__name__)} shape {getattr(t, 'shape', None)}"
            )
        if t.numel() and int(t.min()) < 0:
            raise ValueError(f"{type(self).__name__}: labels must be >= 0, got {int(t.min())}")
        object.__setattr__(self, "labels", t.detach().long())

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def check(self, outputs: torch.Tensor) -> None:
        name = type(self).__name__
        if outputs.ndim != 2:
            raise ValueError(f"{name} needs (N, C) logits, got shape {tuple(outputs.shape)}")
        if outputs.shape[0] != len(self):
            raise ValueError(
                f"{name} holds {len(self)} labels but the batch has {outputs.shape[0]} images"
            )
        if len(self) and int(self.labels.max()) >= outputs.shape[1]:
            raise ValueError(
                f"{name}: label {int(self.labels.max())} does not fit a model with "
                f"{outputs.shape[1]} classes (is the model a classifier head?)"
            )

    def _split(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.labels.to(outputs.device)
        own = outputs.gather(1, y[:, None])[:, 0]
        others = outputs.scatter(1, y[:, None], float("-inf")).amax(dim=1)
        return own, others

    def subset(self, idx: torch.Tensor) -> Any:
        return type(self)(_index(self.labels, idx))


@dataclass(frozen=True)
class Misclassification(_Classification):
    """Untargeted identification: success when ``argmax(logits) != label``."""

    def is_adversarial(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.argmax(dim=1) != self.labels.to(outputs.device)

    def loss(self, outputs: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(
            outputs, self.labels.to(outputs.device), reduction="none"
        )

    def margin(self, outputs: torch.Tensor) -> torch.Tensor:
        own, others = self._split(outputs)
        return others - own


@dataclass(frozen=True)
class TargetedMisclassification(_Classification):
    """Targeted identification: success when ``argmax(logits) == target`` (``labels``=targets)."""

    def is_adversarial(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.argmax(dim=1) == self.labels.to(outputs.device)

    def loss(self, outputs: torch.Tensor) -> torch.Tensor:
        return -nn.functional.cross_entropy(
            outputs, self.labels.to(outputs.device), reduction="none"
        )

    def margin(self, outputs: torch.Tensor) -> torch.Tensor:
        own, others = self._split(outputs)
        return own - others

    @property
    def targets(self) -> torch.Tensor:
        return self.labels
