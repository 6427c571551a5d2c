"""The per-file work of ``facerobust data prepare``, shared by the local process pool
(:mod:`facerobust.data.prepare`) and the Ray tasks (:mod:`facerobust.data.prepare_ray`).
Torch-free (it imports :mod:`facerobust.data.chip_file`, not ``chips``): a spawned worker
starts in well under a second."""

from __future__ import annotations

import os
from pathlib import Path

import cv2

from facerobust.data import align, chip_file

# (path, kind, detector, reason) as a worker reports it; kind "ok" or a SkippedImage kind.
Status = tuple[str, str, str, str]
# (chip cache folder, detector, max pixels, max bytes, detector working size)
Settings = tuple[str, str, int, int, int]


def settings_for(detector: str, max_pixels: int, max_bytes: int) -> Settings:
    """The settings the driver hands every worker: its chip cache and detector working size
    (a worker on another machine may not share the driver's environment)."""
    return (str(chip_file.chip_cache_root()), detector, max_pixels, max_bytes,
            align.detect_side())


def init_worker() -> None:
    """Pool initializer: one OpenCV thread per worker process. dlib's models load on the
    first cache miss, once per worker (so a fully cached, resumed run never loads them)."""
    cv2.setNumThreads(1)


def work(path: str, settings: Settings) -> Status:
    """Align one file into the chip cache; its (path, kind, detector, reason) status."""
    cache_root, detector, max_pixels, max_bytes, side = settings
    if align.detect_side() != side:  # a worker process whose environment differs
        os.environ[align.DETECT_SIDE_ENV] = str(side)
    res = chip_file.chip_for_file(Path(path), Path(cache_root), detector, load=False,
                                  max_pixels=max_pixels, max_bytes=max_bytes)
    return (path, "ok", res.detector, "") if res.ok else (path, res.kind, "", res.reason)
