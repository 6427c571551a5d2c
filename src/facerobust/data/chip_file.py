"""One image file -> its aligned chip, through the self-checking chip cache.

The torch-free half of :mod:`facerobust.data.chips` (which re-exports all of it):
``facerobust data prepare``'s worker processes import only this module, so each starts in a
fraction of a second. See :mod:`facerobust.data.chips` for the cache layout.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facerobust import paths as fr_paths
from facerobust.data import align
from facerobust.data import chip_cache as cc
from facerobust.data.capture import (
    MAX_BYTES,
    MAX_PIXELS,
    NO_FACE,
    Capture,
    check_detector,
    read_image,
)

# SkippedImage.kind values
NO_FACE_KIND, UNREADABLE, TOO_LARGE = "no_face", "unreadable", "too_large"


@dataclass(frozen=True)
class SkippedImage:
    """A file that produced no chip, with a human-readable reason and a machine ``kind``
    (``"no_face"``, ``"unreadable"`` or ``"too_large"``)."""

    path: Path
    reason: str
    kind: str = UNREADABLE

    def to_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "reason": self.reason}


@dataclass(frozen=True)
class ChipResult:
    """One file's outcome: a uint8 chip with the detector that found it and the number of
    faces found, or ``chip=None`` with a skip ``reason`` and ``kind``."""

    chip: np.ndarray | None
    detector: str = ""
    faces: int = 0
    reason: str = ""
    kind: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.detector)


def settings_key(size: int = align.CHIP_SIZE, padding: float = align.CHIP_PADDING) -> str:
    """Folder name encoding every alignment setting that changes chip pixels."""
    return (f"v{align.ALIGN_VERSION}-s{size}-p{padding:g}-up{align.DETECTOR_UPSAMPLE}"
            f"-dlibhog5-d{align.detect_side()}")


def _skip(reason: str, kind: str) -> ChipResult:
    return ChipResult(None, reason=reason, kind=kind)


def chip_for_file(path: Path, cache_root: Path | None, detector: str = "hog+cnn", *,
                  max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES,
                  load: bool = True) -> ChipResult:
    """The aligned uint8 chip of one file (see :class:`ChipResult`). With ``load=False`` a
    cache hit is reported without reading the cached chip (``chip`` is then ``None``)."""
    stages = check_detector(detector)
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return _skip(f"too large: {size / 1e6:.1f} MB on disk (limit {max_bytes / 1e6:g} "
                         "MB)", TOO_LARGE)
        data = path.read_bytes()
    except FileNotFoundError:
        return _skip("file not found", UNREADABLE)
    except IsADirectoryError:
        return _skip("is a directory, not an image file", UNREADABLE)
    except OSError as err:
        return _skip(f"unreadable: {err.strerror or err}", UNREADABLE)
    digest = hashlib.sha256(data).hexdigest()
    todo = list(stages)
    settings = cache_root.name if cache_root is not None else ""
    if cache_root is not None:
        while todo:
            png, noface = cc.entry_paths(cache_root, digest, todo[0])
            if png.is_file():
                cached = cc.read_chip(png, todo[0], settings)
                if cached is None:  # damaged, replaced or older entry: recompute
                    break
                if not load:
                    return ChipResult(None, detector=todo[0])
                return ChipResult(cached[0], detector=todo[0], faces=cached[1])
            if not cc.marker_valid(noface, digest, todo[0], settings):
                break
            todo.pop(0)
        if not todo:
            return _skip(NO_FACE, NO_FACE_KIND)
    rgb, reason = read_image(data, max_pixels)
    if rgb is None:
        return _skip(reason, TOO_LARGE if reason.startswith("too large") else UNREADABLE)
    capture = Capture(detector, max_bytes=max_bytes, max_pixels=max_pixels)
    for stage in todo:
        found = capture.locate_with(rgb, stage)
        entry = cc.entry_paths(cache_root, digest, stage) if cache_root is not None else None
        if found is None:
            if entry is not None:
                cc.try_write(entry[1], cc.noface_marker(digest, stage, settings))
            continue
        chip = align.apply_plan(rgb, found.plan)
        if entry is not None:
            cc.try_write(entry[0], cc.encode_chip(chip, found.faces, stage, settings))
        return ChipResult(chip, detector=stage, faces=found.faces)
    return _skip(NO_FACE, NO_FACE_KIND)


def chip_cache_root() -> Path:
    """The chip cache folder for the current alignment settings."""
    return fr_paths.cache_subdir("chips") / settings_key()
