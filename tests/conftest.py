"""Shared fixtures: the real-data root (``FACEROBUST_DATA``) and a private cache per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

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
