"""Where facerobust keeps caches, weights and datasets.

* ``$FACEROBUST_CACHE`` (default ``~/.cache/facerobust``) holds aligned face chips
  (``chips/``), downloaded datasets (``datasets/``) and fetched model weights (``weights/``).
* ``$FACEROBUST_DATA`` points at a folder of datasets (e.g. ``.../data`` containing
  ``lfw-gray/``); tests marked ``data`` need it.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "FACEROBUST_CACHE"
DATA_ENV = "FACEROBUST_DATA"


def cache_dir() -> Path:
    """Root cache folder (created on first use)."""
    root = os.environ.get(CACHE_ENV)
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "facerobust"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_subdir(name: str) -> Path:
    """A named folder under the cache root, e.g. ``chips``, ``datasets``, ``weights``."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"cache sub-folder name must be a plain name, got {name!r}")
    path = cache_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_roots() -> list[Path]:
    """Folders searched for datasets: ``$FACEROBUST_DATA`` first, then the cache's datasets."""
    roots: list[Path] = []
    env = os.environ.get(DATA_ENV)
    if env:
        roots.append(Path(env).expanduser())
    roots.append(cache_dir() / "datasets")
    return roots


def find_dataset(name: str) -> Path | None:
    """Return the first ``<root>/<name>`` folder that exists among :func:`data_roots`."""
    for root in data_roots():
        candidate = root / name
        if candidate.is_dir():
            return candidate
    return None


MODELS_ENV = "FACEROBUST_MODELS"


def user_models_dir(*, create: bool = True) -> Path:
    """Where ``facerobust models add`` registers your own models: ``$FACEROBUST_MODELS``
    (default ``<cache>/models``), created on first use unless ``create`` is false."""
    root = os.environ.get(MODELS_ENV)
    path = Path(root).expanduser() if root else cache_dir() / "models"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
