"""Detector names, construction from options, and saved detector files.

A saved detector records the face model's name and the sha256 of its parameters, plus the
identification head it watched (when there is one), so it can be loaded on its own against the
same face model; loading it against another model is a ``ValueError`` naming both. Files hold
tensors and plain values only and are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facerobust.detectors.base import Detector, model_sha256
from facerobust.detectors.embedding import embedder_of
from facerobust.detectors.gallery import GalleryDistance
from facerobust.detectors.iforest import IsolationForestDetector
from facerobust.detectors.ocsvm import OneClassSVMDetector
from facerobust.detectors.squeeze import FeatureSqueezing
from facerobust.detectors.trajectory import TrajectoryDetector
from facerobust.models.heads import CosineHead, IdentificationModel, make_head

DETECTOR_FORMAT = 1


def _classes() -> dict[str, type[Detector]]:

    return {cls.name: cls for cls in (TrajectoryDetector, FeatureSqueezing, OneClassSVMDetector,
                                      IsolationForestDetector, GalleryDistance)}


DETECTORS = ("trajectory", "squeeze", "ocsvm", "iforest", "gallery")


def detector_options(name: str) -> tuple[str, ...]:
    """The keyword options a detector accepts (besides the model)."""
    cls = detector_class(name)
    settings = getattr(cls, "settings_type", None)  # options held in a settings dataclass
    if settings is not None:
        return tuple(f.name for f in dataclasses.fields(settings))
    params = inspect.signature(cls.__init__).parameters
    return tuple(p for p in params if p not in ("self", "model", "layers", "batch_size"))


def detector_class(name: str) -> type[Detector]:
    classes = _classes()
    if name not in classes:
        raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
    return classes[name]


def build_detector(name: str, model: nn.Module, *, batch_size: int = 32,
                   where: str = "detector", **options: Any) -> Detector:
    """A detector by name; unknown options are a ``ValueError`` naming them and ``where``."""
    allowed = detector_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown option(s) {', '.join(unknown)} for detector "
                         f"{name!r} (allowed: {', '.join(allowed) or 'none'})")
    return detector_class(name)(model, batch_size=batch_size, **options)


def save_detector(detector: Detector, path: str | Path, *, model_name: str) -> Path:
    """Write a fitted detector, with the model's name and parameter sha256, to ``path``."""
    if not detector.fitted or detector.threshold is None:
        raise ValueError(f"detector {detector.name!r}: fit and calibrate it before saving")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"format": DETECTOR_FORMAT, "detector": detector.name,
           "options": detector.options(), "model": model_name,
           "model_sha256": model_sha256(embedder_of(detector.model)),
           "head": _head_record(detector.model), "threshold": detector.threshold,
           "score_scale": detector.score_scale, "state": detector.state()}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(doc, tmp)
    tmp.replace(path)
    return path


def _head_record(model: nn.Module) -> dict[str, Any] | None:

    head = getattr(model, "head", None)
    if not isinstance(head, nn.Module) or embedder_of(model) is model:
        return None
    return {"kind": "cosine" if isinstance(head, CosineHead) else "linear",
            "state": head.state_dict(), "names": list(getattr(model, "names", []))}


def _with_head(model: nn.Module, record: dict[str, Any] | None) -> nn.Module:
    """The face model with the saved identification head on top (when the file has one)."""

    if not record:
        return model
    state = record["state"]
    weight = state.get("weight", state.get("fc.weight"))
    head = make_head(record["kind"], int(weight.shape[1]), int(weight.shape[0]))
    head.load_state_dict(state)
    ident = IdentificationModel(model, head.eval(), names=list(record["names"]))
    return ident.eval().requires_grad_(False)


def load_detector(path: str | Path, model: nn.Module, *, model_name: str) -> Detector:
    """A saved detector for the face ``model`` (its identification head comes from the file);
    a file fitted on another model is a ``ValueError``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such detector file")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same message
        raise ValueError(f"{path}: not a facerobust detector file ({err})") from None
    if not isinstance(doc, dict) or doc.get("format") != DETECTOR_FORMAT:
        raise ValueError(f"{path}: not a facerobust detector file (format "
                         f"{doc.get('format') if isinstance(doc, dict) else None!r}, "
                         f"expected {DETECTOR_FORMAT})")
    face = embedder_of(model)
    if doc["model"] != model_name or doc["model_sha256"] != model_sha256(face):
        raise ValueError(f"{path}: fitted on model {doc['model']!r} (sha256 "
                         f"{doc['model_sha256'][:12]}), not on {model_name!r} (sha256 "
                         f"{model_sha256(face)[:12]}); fit it again for this model")
    detector = build_detector(doc["detector"], _with_head(face, doc.get("head")),
                              where=str(path), **doc["options"])
    detector.load_state(doc["state"])
    detector.threshold = float(doc["threshold"])
    detector.score_scale = float(doc["score_scale"])
    return detector


class DetectorScorer:
    """A saved detector as a gate scorer: chips -> ``{"score", "threshold", "reject"}``
    (``reject`` when the score is above the detector's calibrated threshold). ``detector``
    stays reachable so an adaptive attacker can push its differentiable score under the
    threshold."""

    def __init__(self, detector: Detector) -> None:
        if detector.threshold is None:
            raise ValueError(f"{detector.name}: the saved detector has no threshold")
        self.detector = detector
        self.threshold = float(detector.threshold)

    def __call__(self, chips: torch.Tensor) -> dict[str, Any]:
        value = float(self.detector.score(chips).max())
        return {"score": value, "threshold": self.threshold, "reject": value > self.threshold}

    def evasion_loss(self, chips: torch.Tensor, slack: float = 0.1) -> torch.Tensor:
        """Differentiable hinge, zero once every chip's score is ``slack`` score spreads
        under the threshold (the adaptive attacker's term; Carlini and Wagner 2017)."""
        score = self.detector.adaptive_score(chips)
        scale = self.detector.score_scale
        return torch.relu((score - self.threshold) / scale + slack).mean()


def detector_scorer(path: str | Path, model: nn.Module, *, model_name: str) -> DetectorScorer:
    """The saved detector at ``path`` as a gate scorer (:class:`DetectorScorer`)."""
    return DetectorScorer(load_detector(path, model, model_name=model_name))
