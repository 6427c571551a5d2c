"""``facerobust data prepare DIR --executor ray [--address ADDR]``: alignment as Ray tasks.

The files under ``DIR`` go to Ray tasks in batches of :data:`BATCH_FILES`; each task runs
:func:`facerobust.data.prepare_work.work` -- the very function of the local executor -- on its
files and returns their short status tuples, never chips, so the driver's memory stays flat.
At most two batches per cluster CPU are in flight. Chips land in the chip cache the driver
names (content-addressed by the source file's hash), so the chips are identical to the local
executor's and a rerun (either executor) only hashes the files already done; workers on other
machines need the dataset and the chip cache on a shared filesystem at the same paths.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cv2

from facerobust.data.prepare_work import Settings, Status, work
from facerobust.ray_cluster import connect, require_ray

BATCH_FILES = 8


def prepare_batch(paths: list[str], settings: Settings) -> list[Status]:
    """In a Ray worker: the status of each file (OpenCV on one thread, as the local pool)."""

    cv2.setNumThreads(1)
    return [work(path, settings) for path in paths]


def _batches(files: Iterator[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for path in files:
        batch.append(path)
        if len(batch) == BATCH_FILES:
            yield batch
            batch = []
    if batch:
        yield batch


def on_ray(files: Iterator[str], settings: Settings, address: str | None
           ) -> tuple[int, Iterator[Status]]:
    """(the cluster's CPUs, the statuses of ``files`` as their tasks finish); the cluster is
    joined (or a local one started) before returning, and left when the statuses run out."""
    ray = require_ray("--executor ray")
    started = connect(ray, address)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    return cpus, _statuses(ray, started, cpus, files, settings)


def _statuses(ray: Any, started: bool, cpus: int, files: Iterator[str], settings: Settings
              ) -> Iterator[Status]:
    task = ray.remote(num_cpus=1)(prepare_batch)
    pending: list[Any] = []
    try:
        for batch in _batches(files):
            pending.append(task.remote(batch, settings))
            if len(pending) >= 2 * cpus:
                yield from _finished(ray, pending)
        while pending:
            yield from _finished(ray, pending)
    finally:
        for ref in pending:
            ray.cancel(ref)
        if started:
            ray.shutdown()


def _finished(ray: Any, pending: list[Any]) -> Iterator[Status]:
    """The statuses of one finished task (removed from ``pending``)."""
    ready, _ = ray.wait(pending, num_returns=1)
    pending.remove(ready[0])
    try:
        statuses = ray.get(ready[0])
    except ray.exceptions.RayError as err:
        raise RuntimeError(f"a Ray task failed ({type(err).__name__}: {err}); finished files "
                           "are cached, rerun to resume") from None
    yield from (tuple(s) for s in statuses)
