"""Load image files as canonical aligned chips, with an on-disk cache.

Each file is read, decoded (grayscale becomes 3 identical channels), face-detected and aligned
(:mod:`facerobust.data.align`). The aligned chip is cached as a lossless PNG under
``facerobust.paths.cache_subdir("chips")/<settings>/<sha256[:2]>/<sha256>.png`` where
``<settings>`` encodes size, padding, detector upsampling and the alignment version, and
``sha256`` is the hash of the file's bytes: a second run (or a renamed copy of the same file)
skips detection. Files without a face are cached as ``<sha256>.noface`` so they are not
re-detected either. All writes are atomic (temporary file + ``os.replace``).

Files that cannot be used (missing, unreadable, not an image, no face) are returned in
``ChipSet.skipped`` with the reason; they never raise.

>>> from facerobust.data.chips import load_chips
>>> cs = load_chips(paths, progress=True)          # doctest: +SKIP
>>> cs.chips.shape                                  # doctest: +SKIP
torch.Size([M, 3, 150, 150])
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from facerobust.data import align

NO_FACE = "no face detected"


@dataclass(frozen=True)
class SkippedImage:
    """A file that produced no chip, with a human-readable reason."""

    path: Path
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "reason": self.reason}


@dataclass
class ChipSet:
    """Aligned chips for the files that succeeded, in input order.

    ``chips[index[path]]`` is the float ``(3, 150, 150)`` RGB chip in ``[0, 1]`` of ``path``.
    """

    chips: torch.Tensor
    paths: list[Path]
    skipped: list[SkippedImage] = field(default_factory=list)
    index: dict[Path, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)


def settings_key(size: int = align.CHIP_SIZE, padding: float = align.CHIP_PADDING) -> str:
    """Folder name encoding every alignment setting that changes chip pixels."""
    return (f"v{align.ALIGN_VERSION}-s{size}-p{padding:g}-up{align.DETECTOR_UPSAMPLE}"
            "-dlibhog5")


def decode_rgb(data: bytes) -> np.ndarray | None:
    """Decode image bytes to an (H, W, 3) uint8 RGB array (gray -> 3 channels), or ``None``."""
    import cv2

    if not data:
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None or img.ndim != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        return None
    return np.ascontiguousarray(img[:, :, ::-1])


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _try_write(path: Path, data: bytes) -> None:
    """Cache writes are best effort: a read-only or full cache must not fail loading."""
    with contextlib.suppress(OSError):
        _atomic_write(path, data)


def _cache_paths(root: Path, digest: str) -> tuple[Path, Path]:
    folder = root / digest[:2]
    return folder / f"{digest}.png", folder / f"{digest}.noface"


def _read_cached(png: Path) -> np.ndarray | None:
    import cv2

    try:
        data = png.read_bytes()
    except OSError:
        return None
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.shape[:2] != (align.CHIP_SIZE, align.CHIP_SIZE):
        return None  # a damaged cache entry is recomputed
    return np.ascontiguousarray(img[:, :, ::-1])


def chip_for_file(path: Path, cache_root: Path | None) -> tuple[np.ndarray | None, str]:
    """The aligned uint8 chip of one file, or ``(None, reason)``."""
    import cv2

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None, "file not found"
    except IsADirectoryError:
        return None, "is a directory, not an image file"
    except OSError as err:
        return None, f"unreadable: {err.strerror or err}"
    digest = hashlib.sha256(data).hexdigest()
    png = noface = None
    if cache_root is not None:
        png, noface = _cache_paths(cache_root, digest)
        if png.is_file():
            chip = _read_cached(png)
            if chip is not None:
                return chip, ""
        elif noface.is_file():
            return None, NO_FACE
    rgb = decode_rgb(data)
    if rgb is None:
        return None, "not a decodable image (corrupt or unsupported format)"
    pts = align.detect_landmarks(rgb)
    if pts is None:
        if noface is not None:
            _try_write(noface, b"")
        return None, NO_FACE
    chip = align.face_chip(rgb, pts)
    if png is not None:
        ok, enc = cv2.imencode(".png", np.ascontiguousarray(chip[:, :, ::-1]))
        if ok:
            _try_write(png, enc.tobytes())
    return chip, ""


def load_chips(paths: Sequence[Path], *, cache: bool = True, progress: bool = False) -> ChipSet:
    """Align every file in ``paths`` (duplicates are loaded once) into a :class:`ChipSet`."""
    if isinstance(paths, (str, Path)):
        raise TypeError("paths must be a sequence of paths, not a single path")
    from facerobust import paths as fr_paths

    cache_root = fr_paths.cache_subdir("chips") / settings_key() if cache else None
    unique = list(dict.fromkeys(Path(p) for p in paths))
    iterator = unique
    if progress:
        from tqdm import tqdm

        iterator = tqdm(unique, desc="aligning faces", unit="img", leave=False)
    arrays: list[np.ndarray] = []
    ok_paths: list[Path] = []
    skipped: list[SkippedImage] = []
    for path in iterator:
        chip, reason = chip_for_file(path, cache_root)
        if chip is None:
            skipped.append(SkippedImage(path, reason))
            continue
        arrays.append(chip)
        ok_paths.append(path)
    if arrays:
        stacked = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        chips = stacked.to(torch.float32).div_(255.0).contiguous()
    else:
        chips = torch.zeros((0, 3, align.CHIP_SIZE, align.CHIP_SIZE), dtype=torch.float32)
    index = {p: i for i, p in enumerate(ok_paths)}
    return ChipSet(chips=chips, paths=ok_paths, skipped=skipped, index=index)
