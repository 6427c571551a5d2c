"""The gate's decision pipeline, built from the library's own parts:

bytes -> size/pixel checks and decode (:func:`facerobust.data.chips.read_image`, the audit's
limits) -> face detection + 5-point alignment (:mod:`facerobust.data.align`, the same detector
chain as :func:`facerobust.data.chips.chip_for_file`) -> configured defense
(:func:`facerobust.defenses.parse_defense`, wrapped as a
:class:`~facerobust.defenses.DefendedModel`) -> model -> optional detectors -> distance to the
gallery, decided at the model's operating threshold.

Detectors are detector files saved by ``facerobust detect --save`` (fitted on the gate's model)
or any callables ``scorer(chips (N,3,150,150)) -> dict[str, bool | float]``; the flags are
logged, and a flag named ``"reject"`` that is true rejects the probe.
"""

from __future__ import annotations

import hashlib
import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from facerobust.data import align, chips
from facerobust.service.config import GateConfig

Scorer = Callable[[torch.Tensor], dict[str, Any]]


class ProbeError(ValueError):
    """A photo the gate cannot use: ``field`` names the form field, ``status`` the HTTP code."""

    def __init__(self, field_name: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.field = field_name
        self.status = status


@dataclass
class Probe:
    sha256: str
    chip: torch.Tensor  # (1, 3, 150, 150) float in [0, 1]
    embedding: np.ndarray  # (D,) float32 raw descriptor
    flags: dict[str, Any] = field(default_factory=dict)


def _factory(spec: str, key: str) -> Callable[[], Any]:
    """The callable named by ``"package.module:factory"`` (errors name ``key``)."""
    module, _, attr = spec.partition(":")
    try:
        factory: Callable[[], Any] = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{key} {spec!r}: cannot import it ({err})") from None
    return factory


def load_model(name: str) -> torch.nn.Module:
    """A registered model by name, or ``"package.module:factory"`` called without arguments
    (for plugins and test stand-ins)."""
    if ":" in name:
        model = _factory(name, "gate.model")()
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"gate.model {name!r} did not build a torch module")
        return model.eval()
    from facerobust.models import registry

    loaded: torch.nn.Module = registry.load(name)
    return loaded


def load_detectors(specs: tuple[str, ...], model: torch.nn.Module | None = None,
                   model_name: str = "") -> dict[str, Scorer]:
    """``{name: scorer}``: a detector file (``*.pt``, saved by ``facerobust detect --save``
    for ``model``) under its file stem, or ``"package.module:factory"`` under the factory's
    name."""
    out: dict[str, Scorer] = {}
    for spec in specs:
        if spec.endswith(".pt"):
            from pathlib import Path

            from facerobust.detectors.registry import detector_scorer

            if model is None:
                raise ValueError(f"gate.detectors {spec!r}: a detector file needs the model")
            try:
                out[Path(spec).stem] = detector_scorer(spec, model, model_name=model_name)
            except ValueError as err:
                raise ValueError(f"gate.detectors: {err}") from None
            continue
        attr = spec.partition(":")[2]
        scorer = _factory(spec, "gate.detectors")()
        if not callable(scorer):
            raise TypeError(f"gate.detectors {spec!r} did not build a callable")
        out[attr] = scorer
    return out


def operating_threshold(name: str, model: torch.nn.Module, configured: float) -> float:
    """``configured`` when > 0, else the card's measured threshold (FAR=1e-3), else the
    model's own default."""
    if configured > 0:
        return float(configured)
    if ":" not in name:
        from facerobust.models.cards import measured_threshold

        measured = measured_threshold(name)
        if measured is not None:
            return measured
    return float(getattr(model, "threshold", 0.5))


class GatePipeline:
    """Photo bytes -> :class:`Probe`; gallery comparisons at ``self.threshold``."""

    def __init__(self, config: GateConfig, model: torch.nn.Module | None = None,
                 scorers: dict[str, Scorer] | None = None) -> None:
        from facerobust.defenses import DefendedModel, parse_defense

        gate = config.gate
        self.config = config
        base = load_model(gate.model) if model is None else model
        self.threshold = operating_threshold(gate.model, base, gate.threshold)
        self.metric = str(getattr(base, "metric", "euclidean"))
        defense = parse_defense(gate.defense)
        self.model = DefendedModel(base, defense).eval()
        self.stages = chips.check_detector(gate.detector)
        self.scorers = dict(scorers) if scorers is not None else load_detectors(
            gate.detectors, base, gate.model)
        self._lock = threading.Lock()  # one forward at a time: torch threads are the budget

    def describe(self) -> dict[str, Any]:
        return {"model": self.config.gate.model, "defense": self.config.gate.defense,
                "detector": self.config.gate.detector, "threshold": self.threshold,
                "metric": self.metric, "detectors": sorted(self.scorers)}

    def chip(self, data: bytes, field_name: str) -> np.ndarray:
        """The aligned uint8 chip of photo bytes (the audit's limits, decoder and aligner)."""
        limits = self.config.limits
        if len(data) > limits.max_bytes:
            raise ProbeError(field_name, f"too large: {len(data)} bytes (limit "
                             f"{limits.max_bytes})", 413)
        rgb, reason = chips.read_image(data, max_pixels=limits.max_pixels)
        if rgb is None:
            status = 413 if reason.startswith("too large") else 415
            raise ProbeError(field_name, reason, status)
        for stage in self.stages:
            faces = align.detect_faces(rgb, stage)  # thread-safe: align holds dlib's lock
            if faces:
                return align.face_chip(rgb, faces[0][0])
        raise ProbeError(field_name, chips.NO_FACE, 422)

    def probe(self, data: bytes, field_name: str = "photo") -> Probe:
        chip = self.chip(data, field_name)
        x = torch.from_numpy(chip).permute(2, 0, 1)[None].float().div(255.0)
        with self._lock, torch.no_grad():
            emb = self.model(x)[0].float().numpy().astype(np.float32)
            flags: dict[str, Any] = {}
            for name, scorer in self.scorers.items():
                flags.update({f"{name}.{k}": v for k, v in scorer(x).items()})
        return Probe(hashlib.sha256(data).hexdigest(), x, emb, flags)

    def distances(self, emb: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        """Distance of one descriptor to each gallery row (the model's metric)."""
        if gallery.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        a = torch.from_numpy(np.repeat(emb[None], gallery.shape[0], axis=0))
        b = torch.from_numpy(gallery)
        with torch.no_grad():
            return self.model.distance(a, b).double().numpy()

    @staticmethod
    def flagged(flags: dict[str, Any]) -> bool:
        return any(k.endswith(".reject") and bool(v) for k, v in flags.items())
