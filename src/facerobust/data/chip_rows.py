"""Chips read from the chip cache on demand: the streaming form of ``ChipSet.chips``.

:class:`ChipRows` behaves like the float ``(N, 3, 150, 150)`` tensor of an eager
:class:`~facerobust.data.chips.ChipSet` for reading (``len``, ``shape``, indexing by an int, a
slice, or an index tensor / array / list), but holds only the file paths: each access reads the
requested rows from the chip cache (:func:`facerobust.data.chips.chip_for_file`, which checks
every entry, and re-aligns a file whose entry is missing) and returns them as a new float
tensor. Memory is therefore bounded by the rows asked for at once (a batch of the embedding
pass, one shard of an attack unit), not by the number of images; the values are bit-identical
to the eager tensor's (same uint8 -> float32 / 255 conversion). Checked chips are also kept in
a :class:`~facerobust.data.chip_memory.ChipMemory` shared by every view of the set, up to its
byte budget, so later passes over the same files skip the decode.

Pickled (to Ray workers, say) it stays a list of paths plus the cache folder and detector: a
worker reads the chips itself, so workers on other machines need the dataset and the chip
cache on a shared filesystem at the same paths.

>>> from facerobust.data.chips import load_chips
>>> cs = load_chips(paths, lazy=True)       # doctest: +SKIP
>>> cs.chips[0:32].shape                     # doctest: +SKIP
torch.Size([32, 3, 150, 150])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from facerobust.data import align
from facerobust.data.chip_memory import ChipMemory


class ReadResult(Protocol):
    """What a chip reader returns (:class:`facerobust.data.chips.ChipResult`)."""

    @property
    def chip(self) -> np.ndarray | None: ...
    @property
    def detector(self) -> str: ...
    @property
    def reason(self) -> str: ...


class ChipReader(Protocol):
    """Reads one file's chip from the cache (:func:`facerobust.data.chips.chip_for_file`); a
    module-level function, so a pickled ChipRows stays a reference to it."""

    def __call__(self, path: Path, cache_root: Path | None, detector: str) -> ReadResult: ...


class ChipRows:
    """Read-only, cache-backed stand-in for a float chip tensor (see the module docstring)."""

    def __init__(self, paths: Sequence[Path], cache_root: Path | None,
                 detectors: dict[Path, str], detector: str, reader: ChipReader,
                 memory: ChipMemory | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        self.cache_root = cache_root
        self.detector = detector
        self.detectors = {p: detectors[p] for p in self.paths}
        self.reader = reader
        self.memory = memory

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the chips in memory: a Ray worker reads (and keeps) its own."""
        return {**self.__dict__, "memory": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.memory = ChipMemory.from_env()

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.paths), 3, align.CHIP_SIZE, align.CHIP_SIZE))

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def ndim(self) -> int:
        return 4

    def select(self, rows: Any) -> ChipRows:
        """Rows ``rows`` (any index :meth:`__getitem__` takes) as a new ``ChipRows``, nothing
        read: a lazy ``chips[rows]``."""
        picked, single = self._rows(rows)
        if single:
            raise TypeError("ChipRows.select needs several rows (a slice or an index), not one")
        return ChipRows([self.paths[r] for r in picked], self.cache_root, self.detectors,
                        self.detector, self.reader, self.memory)

    def _rows(self, item: Any) -> tuple[list[int], bool]:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            return [range(len(self))[int(item)]], True
        if isinstance(item, slice):
            return list(range(len(self)))[item], False
        rows = torch.as_tensor(item)
        if rows.dtype == torch.bool:
            raise TypeError("ChipRows cannot be indexed by a boolean mask; use row indices")
        if rows.ndim != 1 or rows.is_floating_point():
            raise TypeError(f"ChipRows index must be an int, a slice or a 1-d integer index, "
                            f"got {type(item).__name__} of shape {tuple(rows.shape)}")
        n = len(self)
        return [range(n)[int(r)] for r in rows.tolist()], False

    def __getitem__(self, item: Any) -> torch.Tensor:
        rows, single = self._rows(item)
        arrays = [self._read(self.paths[r]) for r in rows]
        if not arrays:
            return torch.zeros((0, *self.shape[1:]), dtype=torch.float32)
        out = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        out = out.to(torch.float32).div_(255.0).contiguous()
        return out[0] if single else out

    def _read(self, path: Path) -> np.ndarray:
        kept = None if self.memory is None else self.memory.get(path)
        if kept is not None:
            return kept
        res = self.reader(path, self.cache_root, self.detector)
        if res.chip is None or res.detector != self.detectors[path]:
            why = res.reason or "the file changed since it was aligned"
            raise OSError(f"{path}: its aligned chip cannot be read back ({why}); chips are "
                          "read from the dataset and the chip cache as they are needed, so "
                          "both must stay in place (and be shared with every Ray worker) for "
                          "the whole run")
        if self.memory is not None:
            self.memory.put(path, res.chip)
        return res.chip

    def materialise(self) -> torch.Tensor:
        """Every row as one float tensor (memory linear in the number of chips)."""
        return self[:]


def take_rows(chips: Any, rows: Any) -> Any:
    """``chips[rows]`` -- lazily (a :class:`ChipRows` view) when ``chips`` is a ChipRows."""
    return chips.select(rows) if isinstance(chips, ChipRows) else chips[rows]
