"""Shared fixtures: the real-data root (``FACEROBUST_DATA``) and a private cache per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

torch.set_num_threads(2)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("FACEROBUST_DATA"):
        return
    skip = pytest.mark.skip(reason="needs real data: set FACEROBUST_DATA to the folder holding "
                                   "lfw-gray/ (CI sets it to ../shared/data)")
    for item in items:
        if item.get_closest_marker("data") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = os.environ.get("FACEROBUST_DATA")
    if not root:
        pytest.skip("FACEROBUST_DATA is not set")
    return Path(root)


@pytest.fixture(scope="session")
def lfw_root(data_root: Path) -> Path:
    path = data_root / "lfw-gray"
    if not (path / "pairs.txt").is_file():
        pytest.skip(f"{path} has no pairs.txt")
    return path


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """Tiny full-batch head training is far faster on one thread on a busy 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A local Ray cluster of 2 CPUs for one test module (skipped without ray)."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install facerobust[scale])")
    root = Path(__file__).resolve().parents[1]
    # workers are fresh processes: they import facerobust and the stand-in model's module
    # (tests.helpers.models, unpickled with the experiment) from these folders
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(root / "src"), str(root), *([old] if old else [])])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        yield ray
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
