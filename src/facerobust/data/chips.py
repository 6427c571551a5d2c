"""Load image files as canonical aligned chips, with an on-disk cache.

Each file is checked against size limits *before* decoding (its byte size, then the pixel
size read lazily from the image header, so a decompression bomb is refused without being
decompressed), decoded (grayscale becomes 3 identical channels; OpenCV applies the EXIF
orientation), face-detected and aligned (:mod:`facerobust.data.align`).

Detectors (``DETECTORS``): ``"hog"`` (dlib HOG), ``"hog+cnn"`` (the default: HOG, then dlib's
CNN detector only when HOG finds no face) and ``"cnn"`` (CNN for every image). The largest
face is used; ``ChipSet.detectors`` and ``ChipSet.faces_found`` say which detector produced
each chip and how many faces it found.

Cache: ``facerobust.paths.cache_subdir("chips")/<settings>/<sha256[:2]>/`` holds, per file
content hash, ``<sha>.png`` (HOG chip) or ``<sha>.noface`` (HOG found none), and
``<sha>.cnn.png`` / ``<sha>.cnn.noface`` for the CNN detector. ``<settings>`` encodes size,
padding, HOG upsampling, the alignment version and the detectors' working size
(:func:`facerobust.data.align.detect_side`). One file's path to its chip lives in
:mod:`facerobust.data.chip_file` (torch-free; re-exported here). Entries check themselves
(:mod:`facerobust.data.chip_cache`: the PNG carries the hash of its pixels, its detector,
settings and face count; a marker names its source hash): a damaged, replaced or planted entry
is recomputed. A second run, or a renamed copy of the same file, skips detection. All writes
are atomic (temporary file + ``os.replace``) and best effort.

Files that cannot be used (missing, unreadable, not an image, too large, no face) are returned
in ``ChipSet.skipped`` with the reason; they never raise.

>>> from facerobust.data.chips import load_chips
>>> cs = load_chips(paths, progress=True)          # doctest: +SKIP
>>> cs.chips.shape, cs.detector_counts()            # doctest: +SKIP
(torch.Size([M, 3, 150, 150]), {'hog': 590, 'cnn': 7})
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

import numpy as np

from facerobust.data import align
from facerobust.data.capture import (
    DETECTORS,
    MAX_BYTES,
    MAX_PIXELS,
    NO_FACE,
    NOT_DECODABLE,
    Capture,
    check_detector,
    decode_rgb,
    header_size,
    read_image,
)
from facerobust.data.chip_file import (
    NO_FACE_KIND,
    TOO_LARGE,
    UNREADABLE,
    ChipResult,
    SkippedImage,
    chip_cache_root,
    chip_for_file,
    settings_key,
)
from facerobust.data.chip_memory import ChipMemory
from facerobust.data.chip_rows import ChipRows

if TYPE_CHECKING:
    import torch

ChipsT = TypeVar("ChipsT")


@dataclass
class ChipSet(Generic[ChipsT]):
    """Aligned chips for the files that succeeded, in input order.

    ``chips[index[path]]`` is the float ``(3, 150, 150)`` RGB chip in ``[0, 1]`` of ``path``;
    ``detectors[path]`` is ``"hog"`` or ``"cnn"`` and ``faces_found[path]`` (>= 1) the number
    of faces that detector found in the image (the largest one is used). ``chips`` is a
    tensor, or (``load_chips(..., lazy=True)``) a :class:`~facerobust.data.chip_rows.ChipRows`
    reading the same values from the cache when indexed.
    """

    chips: ChipsT
    paths: list[Path]
    skipped: list[SkippedImage] = field(default_factory=list)
    index: dict[Path, int] = field(default_factory=dict)
    detectors: dict[Path, str] = field(default_factory=dict)
    faces_found: dict[Path, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)

    def detector_counts(self) -> dict[str, int]:
        """Number of chips per detector, e.g. ``{"hog": 590, "cnn": 7}``."""
        return dict(Counter(self.detectors[p] for p in self.paths))


@overload
def load_chips(paths: Sequence[Path], *, cache: bool = ..., progress: bool = ...,
               detector: str = ..., max_pixels: int = ..., max_bytes: int = ...,
               lazy: Literal[False] = ...) -> ChipSet[torch.Tensor]: ...


@overload
def load_chips(paths: Sequence[Path], *, cache: bool = ..., progress: bool = ...,
               detector: str = ..., max_pixels: int = ..., max_bytes: int = ...,
               lazy: Literal[True]) -> ChipSet[ChipRows]: ...


def load_chips(paths: Sequence[Path], *, cache: bool = True, progress: bool = False,
               detector: str = "hog+cnn", max_pixels: int = MAX_PIXELS,
               max_bytes: int = MAX_BYTES, lazy: bool = False) -> ChipSet[Any]:
    """Align every file in ``paths`` (duplicates are loaded once) into a :class:`ChipSet`.

    ``lazy`` (needs ``cache``): align and cache every file now but keep no chip in memory;
    ``ChipSet.chips`` is then a :class:`~facerobust.data.chip_rows.ChipRows` reading rows
    from the cache when indexed (memory flat in the number of files)."""
    if isinstance(paths, (str, Path)):
        raise TypeError("paths must be a sequence of paths, not a single path")
    check_detector(detector)
    if lazy and not cache:
        raise ValueError("load_chips: lazy=True reads chips back from the cache; it needs "
                         "cache=True")
    import torch

    cache_root = chip_cache_root() if cache else None
    memory = ChipMemory.from_env() if lazy else None  # a bad budget fails before any work
    unique = list(dict.fromkeys(Path(p) for p in paths))
    iterator = unique
    if progress:
        from tqdm import tqdm

        iterator = tqdm(unique, desc="aligning faces", unit="img", leave=False)
    arrays: list[np.ndarray] = []
    ok_paths: list[Path] = []
    skipped: list[SkippedImage] = []
    detectors: dict[Path, str] = {}
    faces_found: dict[Path, int] = {}
    for path in iterator:
        res = chip_for_file(path, cache_root, detector, max_pixels=max_pixels,
                            max_bytes=max_bytes)
        if res.chip is None:
            skipped.append(SkippedImage(path, res.reason, res.kind))
            continue
        if memory is not None:
            memory.put(path, res.chip)
        else:
            arrays.append(res.chip)
        ok_paths.append(path)
        detectors[path] = res.detector
        faces_found[path] = res.faces
    if lazy:
        chips: Any = ChipRows(ok_paths, cache_root, detectors, detector, chip_for_file, memory)
    elif arrays:
        chips = _float_chips(arrays)
    else:
        chips = torch.zeros((0, 3, align.CHIP_SIZE, align.CHIP_SIZE), dtype=torch.float32)
    index = {p: i for i, p in enumerate(ok_paths)}
    return ChipSet(chips=chips, paths=ok_paths, skipped=skipped, index=index,
                   detectors=detectors, faces_found=faces_found)


def _float_chips(arrays: list[np.ndarray]) -> Any:
    """(N, 3, H, W) float32 in [0, 1] from N HxWx3 uint8 chips, written in place chip by chip:
    peak memory is the float tensor plus the uint8 list (stacking, converting and
    re-laying-out made three float-sized copies: 5.4 GB for colour LFW's 7,701 chips)."""
    import torch

    h, w, c = arrays[0].shape
    out = np.empty((len(arrays), c, h, w), dtype=np.float32)
    for i, arr in enumerate(arrays):
        out[i] = arr.transpose(2, 0, 1)  # uint8 -> float32 is exact
    return torch.from_numpy(out).div_(255.0)


# the capture's limits and decoder, and chip_file's one-file API, are re-exported
__all__ = [
    "Capture",
    "ChipResult",
    "ChipSet",
    "DETECTORS",
    "MAX_BYTES",
    "MAX_PIXELS",
    "NOT_DECODABLE",
    "NO_FACE",
    "NO_FACE_KIND",
    "SkippedImage",
    "TOO_LARGE",
    "UNREADABLE",
    "check_detector",
    "chip_cache_root",
    "chip_for_file",
    "decode_rgb",
    "header_size",
    "load_chips",
    "read_image",
    "settings_key",
]
