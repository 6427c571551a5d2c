"""Name -> model registry. Each entry points at a factory and a weight locator by import path,
so listing models never imports heavy code or touches weights."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facerobust.models.base import FaceModel
from facerobust.models.dlib_student import build as build_dlib_student
from facerobust.models.dlib_student import is_dlib_student_file
from facerobust.models.spec_file import is_spec_path
from facerobust.models.spec_model import load_spec_model, user_spec_path
from facerobust.models.student import load_student


@dataclass(frozen=True)
class ModelSpec:
    """One registered model.

    ``factory`` and ``locate`` are ``"module:function"`` strings. ``factory(**kwargs)`` builds
    the :class:`~facerobust.models.base.FaceModel`; ``locate()`` returns the weight file path,
    or ``None`` when the weights are not on this machine (with ``fetch_hint`` saying how).
    """

    name: str
    description: str
    factory: str
    locate: str
    fetch_hint: str = ""


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> None:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec


def _resolve(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def specs() -> list[ModelSpec]:
    return list(_REGISTRY.values())


def get_spec(name: str) -> ModelSpec:
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise ValueError(f"unknown model {name!r}; known models: {known}, a model spec "
                         "(*.toml) or one added by `facerobust models add`")
    return _REGISTRY[name]


def weights_path(name: str) -> Path | None:
    """Path of the weight file for ``name`` or ``None`` when it is not available."""
    return _resolve(get_spec(name).locate)()


def load(name: str, device: str | None = None, **kwargs: Any) -> FaceModel:
    """Build model ``name`` in eval mode with weights loaded, on ``device`` (default CPU).
    ``name`` may also be the path of a student saved by ``facerobust distill`` or built by
    ``facerobust models build dlib-student`` (``.pt``), a
    model spec file (``.toml``, :mod:`facerobust.models.spec_file`) or the name of a model
    added by ``facerobust models add``."""
    if name not in _REGISTRY:
        own: FaceModel | None = None
        if str(name).endswith(".pt"):
            own = (build_dlib_student(weights=name) if is_dlib_student_file(name)
                   else load_student(name))
        elif is_spec_path(name):
            own = load_spec_model(name)
        elif (registered := user_spec_path(str(name))) is not None:
            own = load_spec_model(registered)
        if own is not None:
            return own if device is None else own.to(device)
    spec = get_spec(name)
    if _resolve(spec.locate)() is None:
        hint = f" ({spec.fetch_hint})" if spec.fetch_hint else ""
        raise FileNotFoundError(f"weights for model {name!r} are not available{hint}")
    model = _resolve(spec.factory)(**kwargs)
    if not isinstance(model, FaceModel):
        raise TypeError(f"model {name!r}: factory {spec.factory} built a "
                        f"{type(model).__name__}, not a FaceModel")
    model.eval()
    if device is not None:
        model = model.to(device)
    return model
