"""The per-file work of ``facerobust data prepare``, shared by the local process pool
(:mod:`facerobust.data.prepare`) and the Ray tasks (:mod:`facerobust.data.prepare_ray`)."""

from __future__ import annotations

from pathlib import Path

import cv2

from facerobust.data import chips as chips_mod

# (path, kind, detector, reason) as a worker reports it; kind "ok" or a SkippedImage kind.
Status = tuple[str, str, str, str]
Settings = tuple[str, str, int, int]  # (chip cache folder, detector, max pixels, max bytes)


def init_worker() -> None:
    """Pool initializer: one OpenCV thread per worker process. dlib's models load on the
    first cache miss, once per worker (so a fully cached, resumed run never loads them)."""
    cv2.setNumThreads(1)


def work(path: str, settings: Settings) -> Status:
    """Align one file into the chip cache; its (path, kind, detector, reason) status."""
    cache_root, detector, max_pixels, max_bytes = settings
    res = chips_mod.chip_for_file(Path(path), Path(cache_root), detector, load=False,
                                  max_pixels=max_pixels, max_bytes=max_bytes)
    return (path, "ok", res.detector, "") if res.ok else (path, res.kind, "", res.reason)
