"""Decoded chips kept in memory up to a byte budget, so repeated passes skip the PNG decode.

An audit reads every chip several times (the scan that checks the cache, each model's clean
embeddings, a defense's clean pairs); decoding and hash-checking a cached chip costs ~0.9 ms,
about 7 s per pass over LFW's 8,660 seed chips. :class:`ChipMemory` keeps the checked uint8
chips (67.5 kB each) of the first files read, up to ``FACEROBUST_CHIP_MEMORY_MB`` megabytes
(default 1024, about 15,000 chips; 0 turns it off). It keeps the first chips it is given and
never evicts: for passes that scan the same files in the same order, evicting would give no
hits once the files exceed the budget, keeping the first ones gives a hit for every kept file.
Memory is thus bounded by the budget plus the rows asked for at once.

>>> memory = ChipMemory.from_env()
>>> memory.put(Path("a.jpg"), chip); memory.get(Path("a.jpg")) is not None   # doctest: +SKIP
True
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

CHIP_MEMORY_ENV = "FACEROBUST_CHIP_MEMORY_MB"
DEFAULT_MB = 1024


def budget_from_env() -> int:
    """The budget in bytes from ``FACEROBUST_CHIP_MEMORY_MB`` (default 1024 MB)."""
    raw = os.environ.get(CHIP_MEMORY_ENV, "").strip()
    if not raw:
        return DEFAULT_MB * 2**20
    try:
        mb = float(raw)
    except ValueError:
        mb = -1.0
    if not mb >= 0 or mb == float("inf"):
        raise ValueError(f"{CHIP_MEMORY_ENV} must be a number of megabytes >= 0 (0 turns the "
                         f"in-memory chip store off), got {raw!r}")
    return int(mb * 2**20)


class ChipMemory:
    """Checked chips by source path, the first ones up to ``budget`` bytes (see the module)."""

    def __init__(self, budget: int) -> None:
        if budget < 0:
            raise ValueError(f"ChipMemory budget must be >= 0 bytes, got {budget}")
        self.budget, self.used = budget, 0
        self._chips: dict[Path, np.ndarray] = {}

    @classmethod
    def from_env(cls) -> ChipMemory:
        return cls(budget_from_env())

    def __len__(self) -> int:
        return len(self._chips)

    def get(self, path: Path) -> np.ndarray | None:
        return self._chips.get(path)

    def put(self, path: Path, chip: np.ndarray) -> None:
        """Keep ``chip`` (read-only) when it is new and fits the budget; otherwise nothing."""
        if path in self._chips or self.used + chip.nbytes > self.budget:
            return
        kept = np.array(chip, copy=True)
        kept.setflags(write=False)
        self._chips[path] = kept
        self.used += kept.nbytes
