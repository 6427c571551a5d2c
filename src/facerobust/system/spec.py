"""What a face system is made of, as configured: the ``[system]`` keys shared by the gate's
TOML (``[gate]``) and the audit, and the loaders that turn them into parts.

``model`` is a registered zoo name, a model spec file (``*.toml``, your own ONNX, TorchScript or
Python network; :mod:`facerobust.models.spec_file`), a model added by ``facerobust models add``
or ``"package.module:factory"`` (a plugin or test stand-in, called without arguments);
``threshold`` 0 means the model card's measured threshold (FAR=1e-3), else the model's own
default (a spec model's: ``output.threshold`` or its calibrated card); ``detectors`` are
files saved by ``facerobust detect --save`` (``*.pt``, fitted on this model) or factories whose
result maps chips (N, 3, 150, 150) to ``{flag: value}`` (a true ``"reject"`` flag rejects the
probe).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from facerobust.data.capture import check_detector
from facerobust.detectors.registry import detector_scorer
from facerobust.models import registry
from facerobust.models.cards import measured_threshold

Scorer = Callable[[torch.Tensor], dict[str, Any]]


@dataclass(frozen=True)
class SystemSpec:
    """The parts of one face system, by name (validated on construction)."""

    model: str = "dlib-resnet"
    defense: str = "none"  # a defense spec (facerobust.defenses.parse_defense)
    detector: str = "hog"  # the capture's face detector chain: hog | hog+cnn | cnn
    threshold: float = 0.0  # 0 = the model card's measured threshold, else the model's
    detectors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("system.model is empty: name a zoo model or 'package.module:factory'")
        check_detector(self.detector)
        if self.threshold < 0:
            raise ValueError(f"system.threshold must be >= 0, got {self.threshold}")


SYSTEM_KEYS = ("model", "defense", "detector", "threshold", "detectors")


def parse_system(data: Any, where: str = "system") -> SystemSpec:
    """Validate a ``[system]`` table (unknown keys and bad values name ``where.key``)."""
    if not isinstance(data, dict):
        raise ValueError(f"[{where}] must be a table, got {type(data).__name__}")
    unknown = sorted(set(data) - set(SYSTEM_KEYS))
    if unknown:
        raise ValueError(f"unknown key {where}.{unknown[0]}; allowed: {', '.join(SYSTEM_KEYS)}")
    for key in ("model", "defense", "detector"):
        if key in data and not isinstance(data[key], str):
            raise ValueError(f"{where}.{key} must be a string, got {data[key]!r}")
    thr = data.get("threshold", 0.0)
    if isinstance(thr, bool) or not isinstance(thr, (int, float)) or thr < 0:
        raise ValueError(f"{where}.threshold must be a number >= 0, got {thr!r}")
    dets = data.get("detectors", [])
    if not isinstance(dets, (list, tuple)) or not all(isinstance(d, str) for d in dets):
        raise ValueError(f"{where}.detectors must be a list of strings, got {dets!r}")
    values = {k: data[k] for k in ("model", "defense", "detector") if k in data}
    try:
        return SystemSpec(**values, threshold=float(thr), detectors=tuple(dets))
    except ValueError as err:
        raise ValueError(f"[{where}]: {err}") from None


def _factory(spec: str, key: str) -> Callable[[], Any]:
    """The callable named by ``"package.module:factory"`` (errors name ``key``)."""
    module, _, attr = spec.partition(":")
    try:
        factory: Callable[[], Any] = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{key} {spec!r}: cannot import it ({err})") from None
    return factory


def load_model(name: str, key: str = "system.model") -> torch.nn.Module:
    """A registered model by name (or spec file), or ``"package.module:factory"`` called
    without arguments."""
    if ":" in name:
        model = _factory(name, key)()
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"{key} {name!r} did not build a torch module")
        return model.eval()
    loaded: torch.nn.Module = registry.load(name)
    return loaded


def load_detectors(specs: tuple[str, ...], model: torch.nn.Module | None = None,
                   model_name: str = "", key: str = "system.detectors") -> dict[str, Scorer]:
    """``{name: scorer}``: a detector file under its file stem, a factory under its name."""
    out: dict[str, Scorer] = {}
    for spec in specs:
        if spec.endswith(".pt"):
            if model is None:
                raise ValueError(f"{key} {spec!r}: a detector file needs the model")
            try:
                out[Path(spec).stem] = detector_scorer(spec, model, model_name=model_name)
            except ValueError as err:
                raise ValueError(f"{key}: {err}") from None
            continue
        scorer = _factory(spec, key)()
        if not callable(scorer):
            raise TypeError(f"{key} {spec!r} did not build a callable")
        out[spec.partition(":")[2]] = scorer
    return out


def operating_threshold(name: str, model: torch.nn.Module, configured: float) -> float:
    """``configured`` when > 0, else the card's measured threshold (FAR=1e-3), else the
    model's own default."""
    if configured > 0:
        return float(configured)
    if ":" not in name:
        measured = measured_threshold(name)
        if measured is not None:
            return measured
    return float(getattr(model, "threshold", 0.5))
