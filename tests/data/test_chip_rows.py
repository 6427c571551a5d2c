"""Streamed chips: ChipRows reads the same values as the eager tensor, one request at a time,
pickles as paths, and names a file whose chip can no longer be read."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from facerobust.cli.demo import embedded_dataset
from facerobust.data.chips import load_chips


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _images(tmp_path: Path, n: int = 5) -> list[Path]:
    files = sorted(embedded_dataset().rglob("*.jpg"))[:n]
    out = []
    for f in files:  # copies, so the test may remove one
        dest = tmp_path / "imgs" / f.name
        dest.parent.mkdir(exist_ok=True)
        shutil.copy(f, dest)
        out.append(dest)
    return out


def test_lazy_rows_equal_the_eager_tensor(tmp_path: Path, cache: Path) -> None:
    paths = _images(tmp_path)
    eager = load_chips(paths)
    lazy = load_chips(paths, lazy=True)
    rows = lazy.chips
    assert lazy.paths == eager.paths and lazy.faces_found == eager.faces_found
    assert len(rows) == len(eager.chips) and rows.shape == eager.chips.shape
    assert torch.equal(rows[:], eager.chips)
    assert torch.equal(rows[1:4], eager.chips[1:4])
    assert torch.equal(rows[2], eager.chips[2])
    assert torch.equal(rows[-1], eager.chips[-1])
    for index in (torch.tensor([3, 0, 3]), np.array([4, 1]), [2]):
        assert torch.equal(rows[index], eager.chips[torch.as_tensor(index)])
    assert rows[torch.tensor([], dtype=torch.int64)].shape == (0, 3, 150, 150)
    with pytest.raises(IndexError):
        rows[len(rows)]
    with pytest.raises(TypeError, match="boolean mask"):
        rows[torch.ones(len(rows), dtype=torch.bool)]
    view = rows.select(torch.tensor([4, 0, 4]))  # lazy rows[...]: nothing read yet
    assert len(view) == 3 and view.ndim == 4
    assert torch.equal(view[1:], eager.chips[torch.tensor([0, 4])])


def test_lazy_rows_pickle_small_and_name_a_vanished_file(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEROBUST_CHIP_MEMORY_MB", "0")  # every access reads the cache
    paths = _images(tmp_path)
    rows = load_chips(paths, lazy=True).chips
    blob = pickle.dumps(rows)
    assert len(blob) < 5_000  # paths, not pixels (5 chips are 337 KB as uint8)
    again = pickle.loads(blob)
    assert torch.equal(again[:2], rows[:2])
    paths[1].unlink()
    with pytest.raises(OSError, match=f"{paths[1].name}: its aligned chip cannot be read back"):
        again[1]
    assert torch.equal(again[0], rows[0])


def test_lazy_needs_the_cache() -> None:
    with pytest.raises(ValueError, match="lazy=True .* needs cache=True"):
        load_chips([Path("x.jpg")], cache=False, lazy=True)
