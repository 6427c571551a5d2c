"""Detect, align and cache every image under a folder, in parallel (``facerobust data prepare``).

Walks ``root`` recursively for image files (:data:`facerobust.data.lfw.IMAGE_SUFFIXES`) and
runs :func:`facerobust.data.chips.chip_for_file` on each, so that later audits find every chip
in the cache. Resumable: already-cached files only cost a hash. With ``workers > 1`` the
calling process and ``workers - 1`` spawned processes (each loading dlib once) do the work, so
all ``workers`` cores are busy from the start; workers return short status tuples, never chips,
so memory stays flat however large the dataset is. Each file is read and decoded once, and
detected at the detectors' working size (:func:`facerobust.data.align.detect_side`).

>>> from facerobust.data.prepare import prepare_dataset
>>> rep = prepare_dataset("photos/", workers=2)          # doctest: +SKIP
>>> rep.ok, rep.no_face, rep.images_per_second           # doctest: +SKIP
({'hog': 590, 'cnn': 7}, 3, 41.2)
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import cv2
from tqdm import tqdm

from facerobust.data import chips as chips_mod
from facerobust.data.chips import MAX_BYTES, MAX_PIXELS, SkippedImage
from facerobust.data.lfw import IMAGE_SUFFIXES
from facerobust.data.prepare_ray import on_ray
from facerobust.data.prepare_work import Settings, Status, init_worker, settings_for, work

EXECUTORS = ("local", "ray")
# files queued per spawned worker: enough to keep it busy while the caller aligns a slow photo
IN_FLIGHT = 8


@dataclass
class PrepareReport:
    """Counts of one :func:`prepare_dataset` run; ``skipped`` is sorted by path."""

    root: Path
    detector: str
    workers: int
    executor: str = "local"
    total: int = 0
    ok: dict[str, int] = field(default_factory=dict)
    no_face: int = 0
    unreadable: int = 0
    too_large: int = 0
    seconds: float = 0.0
    skipped: list[SkippedImage] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0

    def add(self, status: Status) -> None:
        path, kind, detector, reason = status
        self.total += 1
        if kind == "ok":
            self.ok[detector] = self.ok.get(detector, 0) + 1
            return
        self.skipped.append(SkippedImage(Path(path), reason, kind))
        if kind == chips_mod.NO_FACE_KIND:
            self.no_face += 1
        elif kind == chips_mod.TOO_LARGE:
            self.too_large += 1
        else:
            self.unreadable += 1

    def lines(self, listed: int = 10) -> list[str]:
        """Human-readable summary: counts, throughput, the first ``listed`` skipped files."""
        by_det = ", ".join(f"{k} {v}" for k, v in sorted(self.ok.items())) or "none"
        where = "Ray " if self.executor == "ray" else ""
        out = [f"{self.total} image(s) under {self.root} in {self.seconds:.1f} s "
               f"({self.images_per_second:.1f} images/s, {self.workers} {where}worker(s), detector "
               f"{self.detector})",
               f"  ok:                 {sum(self.ok.values())} ({by_det})",
               f"  no face:            {self.no_face}",
               f"  corrupt/unreadable: {self.unreadable}",
               f"  too large:          {self.too_large}"]
        if self.skipped:
            out.append(f"skipped {len(self.skipped)} file(s)"
                       + (f", the first {listed}:" if len(self.skipped) > listed else ":"))
            out += [f"  {s.path}: {s.reason}" for s in self.skipped[:listed]]
        return out


def iter_image_files(root: Path) -> Iterator[Path]:
    """Image files under ``root`` (recursive, sorted, symlinked folders not followed)."""

    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                yield Path(folder) / name


def _parallel(files: Iterator[str], settings: Settings,
              workers: int) -> Iterator[Status]:
    """Statuses from the calling process plus ``workers - 1`` spawned ones. The pool keeps
    :data:`IN_FLIGHT` files per process queued and the caller aligns the others itself, so it
    works from the first second (while the pool still starts); at the end the caller takes
    back queued files one at a time, newest first, so no core idles while files wait. Memory
    stays flat; a worker that dies (e.g. killed for memory) raises instead of hanging."""
    ctx = multiprocessing.get_context("spawn")
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # the caller is one of the workers: one OpenCV thread, as they
    try:
        with ProcessPoolExecutor(workers - 1, mp_context=ctx, initializer=init_worker) as pool:
            pending: dict[Future[Status], str] = {}
            for path in files:
                if len(pending) < IN_FLIGHT * (workers - 1):
                    pending[pool.submit(work, path, settings)] = path
                else:
                    yield work(path, settings)
                yield from _collect(pending, block=False)
            while pending:
                back = _take_back(pending)
                if back is not None:
                    yield work(back, settings)
                yield from _collect(pending, block=back is None)
    except BrokenProcessPool as err:
        raise RuntimeError("a worker process died (out of memory?); finished files are "
                           "cached, rerun to resume (with fewer --workers)") from err
    finally:
        cv2.setNumThreads(threads)


def _take_back(pending: dict[Future[Status], str]) -> str | None:
    """The path of the newest queued file no worker has started (cancelled and removed from
    ``pending``), or ``None``."""
    for future in reversed(list(pending)):
        if future.cancel():
            return pending.pop(future)
    return None


def _collect(pending: dict[Future[Status], str], *, block: bool) -> Iterator[Status]:
    """The statuses of the finished futures (removed from ``pending``); with ``block``, wait
    for at least one."""
    if block:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
    else:
        done = {f for f in pending if f.done()}
    for future in done:
        del pending[future]
        yield future.result()


def prepare_dataset(root: Path | str, *, workers: int = 1, detector: str = "hog+cnn",
                    progress: bool = True, max_pixels: int = MAX_PIXELS,
                    max_bytes: int = MAX_BYTES, executor: str = "local",
                    address: str | None = None) -> PrepareReport:
    """Detect, align and cache every image file under ``root`` with ``workers`` processes, or
    (``executor="ray"``) as Ray tasks on the cluster at ``address`` or a local one
    (:mod:`facerobust.data.prepare_ray`; every CPU of the cluster works, ``workers`` must stay
    1)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if executor not in EXECUTORS:
        raise ValueError(f"executor: {executor!r} is not one of {', '.join(EXECUTORS)}")
    if executor == "ray" and workers != 1:
        raise ValueError("--workers is for the local executor; with --executor ray every CPU "
                         "of the cluster works")
    if address and executor != "ray":
        raise ValueError("--address needs --executor ray")
    chips_mod.check_detector(detector)
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder")
    start = time.perf_counter()
    total = sum(1 for _ in iter_image_files(root))
    report = PrepareReport(root=root, detector=detector, workers=workers, executor=executor)
    settings = settings_for(detector, max_pixels, max_bytes)
    files = (str(p) for p in iter_image_files(root))

    statuses = None
    if executor == "ray":

        report.workers, statuses = on_ray(files, settings, address)
    bar = tqdm(total=total, desc="preparing chips", unit="img", file=sys.stderr,
               disable=not progress)
    try:
        if statuses is not None:
            for status in statuses:
                report.add(status)
                bar.update()
        elif workers == 1:
            for path in files:
                report.add(work(path, settings))
                bar.update()
        else:
            for status in _parallel(files, settings, workers):
                report.add(status)
                bar.update()
    finally:
        bar.close()
    report.seconds = time.perf_counter() - start
    report.skipped.sort(key=lambda s: str(s.path))
    return report
