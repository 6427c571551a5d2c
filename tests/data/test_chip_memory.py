"""The in-memory chip store: later passes over a lazy chip set skip the cache read, values stay
identical, the budget bounds it, and a bad budget is named."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from facerobust.cli.demo import embedded_dataset
from facerobust.data import chips as chips_module
from facerobust.data.chip_memory import CHIP_MEMORY_ENV, ChipMemory
from facerobust.data.chips import load_chips

CHIP_BYTES = 150 * 150 * 3


@pytest.fixture()
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    out = []
    for f in sorted(embedded_dataset().rglob("*.jpg"))[:6]:
        dest = tmp_path / "imgs" / f.name
        dest.parent.mkdir(exist_ok=True)
        shutil.copy(f, dest)
        out.append(dest)
    return out


def _counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Replaces the chip reader lazy sets use by one that records each file it reads."""
    reads: list[Path] = []
    real = chips_module.chip_for_file

    def counted(path: Path, *args: Any, **kwargs: Any) -> Any:
        reads.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(chips_module, "chip_for_file", counted)
    return reads


def test_later_passes_read_no_file_and_give_the_same_values(
        paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    eager = load_chips(paths).chips
    reads = _counting_reads(monkeypatch)
    rows = load_chips(paths, lazy=True).chips
    assert len(reads) == len(paths)  # the scan that checks every entry
    assert torch.equal(rows[:], eager) and torch.equal(rows.select([4, 1])[:], eager[[4, 1]])
    assert len(reads) == len(paths)  # no pass after the scan touched the cache


def test_the_budget_keeps_the_first_chips_and_zero_turns_it_off(
        paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CHIP_MEMORY_ENV, str(2.5 * CHIP_BYTES / 2**20))  # room for two chips
    reads = _counting_reads(monkeypatch)
    rows = load_chips(paths, lazy=True).chips
    assert rows.memory is not None and len(rows.memory) == 2
    assert rows.memory.used == 2 * CHIP_BYTES <= rows.memory.budget
    reads.clear()
    rows[:]
    rows[:]
    assert reads == 2 * paths[2:]  # the first two stay in memory, the rest are read each time
    monkeypatch.setenv(CHIP_MEMORY_ENV, "0")
    off = load_chips(paths, lazy=True).chips
    reads.clear()
    off[:2]
    assert reads == paths[:2]


def test_kept_chips_are_read_only_copies() -> None:
    memory = ChipMemory(10 * CHIP_BYTES)
    chip = np.zeros((150, 150, 3), dtype=np.uint8)
    memory.put(Path("a.jpg"), chip)
    chip[0, 0, 0] = 7  # the caller's array may change; the kept copy does not
    kept = memory.get(Path("a.jpg"))
    assert kept is not None and kept[0, 0, 0] == 0
    with pytest.raises(ValueError, match="read-only"):
        kept[0, 0, 0] = 1
    assert memory.get(Path("b.jpg")) is None
    with pytest.raises(ValueError, match="budget must be >= 0"):
        ChipMemory(-1)


def test_a_pickled_set_carries_paths_not_the_kept_chips(paths: list[Path]) -> None:
    rows = load_chips(paths, lazy=True).chips
    blob = pickle.dumps(rows)
    assert len(blob) < 5_000
    again = pickle.loads(blob)
    assert again.memory is not None and len(again.memory) == 0
    assert torch.equal(again[:], rows[:]) and len(again.memory) == len(paths)


@pytest.mark.parametrize("value", ["lots", "-5", "inf", "nan"])
def test_a_bad_budget_is_named_before_any_work(
        value: str, paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CHIP_MEMORY_ENV, value)
    reads = _counting_reads(monkeypatch)
    with pytest.raises(ValueError, match=f"{CHIP_MEMORY_ENV} must be a number of megabytes"):
        load_chips(paths, lazy=True)
    assert reads == []
