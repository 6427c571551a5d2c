"""The ``ray`` executor of an audit: the units not yet in the run store -- one task per unit, or
one per shard of a sharded unit (attack, minimal, defense and fusion units by samples, detector
units by variant: :mod:`facerobust.eval.shards`) -- become Ray tasks.

* The driver prepares the :class:`~facerobust.eval.experiment.Experiment` as the local
  executor does, computes what units share and cache in the run store (every model's
  embeddings and identification heads), and puts the experiment -- loaded models, pairs,
  split, embeddings, and the chips as *paths* (:class:`~facerobust.data.chip_rows.ChipRows`)
  -- into Ray's object store once. Each worker process fetches it once and keeps it for every
  task it runs (models travel pickled with their weights, so a stand-in model reaches workers
  without patching them), and reads the chips a task needs from the dataset and the chip
  cache: workers on other machines need both on a shared filesystem at the same paths.
* A worker rebuilds the unit from the same plan (:func:`facerobust.eval.audit.plan_units`), so
  each unit keeps its own seed (``unit_seed(run seed, key)``) and each shard its own
  (``shard_seed(unit seed, index)``); the local executor runs the same shards, so results are
  identical. Files a unit writes (example grids, fitted detectors) are returned to the driver
  (or, for a sharded unit, written by the driver when it merges the parts).
* The driver saves each result -- and each shard's part, until its unit is complete -- into
  the same :class:`~facerobust.eval.store.RunStore` as it completes, so a killed run resumes
  exactly as with the local executor, down to the finished shards.
* Workers run torch on one thread each; a task asks Ray for one CPU.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from facerobust.allocator import keep_freed_memory
from facerobust.eval.experiment import Experiment
from facerobust.eval.shards import (
    Part,
    ShardedUnit,
    ShardParts,
    SharedData,
    log_reuse,
    sharded_of,
)
from facerobust.eval.store import RunStore
from facerobust.ray_cluster import INSTALL_HINT, connect, require_ray

__all__ = ["INSTALL_HINT", "compute_shard", "compute_unit", "connect", "require_ray",
           "run_on_ray", "shippable"]

log = logging.getLogger("facerobust.audit")
# the audit's plan_units: (config, experiment, out folder) -> [(key, fingerprint, unit fn)]
Planner = Callable[[Any, Experiment, Path], list[tuple[str, str, Any]]]
_SHIPPED: dict[str, Experiment] = {}  # in a worker process: the experiment, by object id


def shippable(exp: Experiment) -> Experiment:
    """``exp`` with the state units share computed once (embeddings, identification heads;
    cached in the run store) and no store or progress bars: what workers receive."""
    for name in exp.models:
        exp.embeddings(name)
    if exp.split is not None:
        for name in exp.models:
            exp.identification_model(name)
    return dataclasses.replace(exp, store=None, progress=False)


def _shipped(box: list[Any]) -> Experiment:
    """In a worker: the experiment behind ``box`` (a list wrapping its object ref, so that Ray
    hands the ref itself), fetched and unpickled once per worker process."""
    import ray


    torch.set_num_threads(1)
    keep_freed_memory()
    ref = box[0]
    exp = _SHIPPED.get(ref.hex())
    if exp is None:  # unpickled here, not zero-copy: arrays and tensors stay writable
        _SHIPPED.clear()
        exp = _SHIPPED[ref.hex()] = pickle.loads(ray.get(ref))
    torch.manual_seed(exp.cfg.run.seed)
    np.random.seed(exp.cfg.run.seed % (2**32))
    return exp


def _planned(exp: Experiment, plan: Planner, out: Path) -> dict[str, Any]:
    """Every planned unit's function by key, and the shards of the data they share by its
    run-store key."""
    fns: dict[str, Any] = {}
    for key, _, fn in plan(exp.cfg, exp, out):
        fns[key] = fn
        for need in getattr(fn, "needs", []):
            fns[need.key] = need.shards
    return fns


def _adopt_shared(exp: Experiment, shared: dict[str, Any] | None) -> Experiment:
    """``exp`` with the shared data behind the object refs ``shared`` (fetched once per
    worker process)."""
    import ray

    for name, ref in (shared or {}).items():
        if name not in exp.shared:
            exp.shared[name] = ray.get(ref)
    return exp


def compute_unit(box: list[Any], key: str, plan_units: Planner,
                 shared: dict[str, Any] | None = None
                 ) -> tuple[dict[str, Any], dict[str, bytes]]:
    """In a worker: unit ``key`` of the shipped experiment -> (result payload, the files it
    wrote, by path relative to the run folder). ``shared`` holds the object refs of the data
    it needs (installed once per worker)."""
    exp = _adopt_shared(_shipped(box), shared)
    with tempfile.TemporaryDirectory(prefix="facerobust-unit-") as tmp:
        out = Path(tmp)
        fn = _planned(exp, plan_units, out)[key]
        tic = time.perf_counter()
        payload = fn().to_dict()
        if not payload.get("seconds"):
            payload["seconds"] = time.perf_counter() - tic
        files = {p.relative_to(out).as_posix(): p.read_bytes()
                 for p in sorted(out.rglob("*")) if p.is_file()}
    return payload, files


def compute_shard(box: list[Any], key: str, index: int, plan_units: Planner,
                  state: Any = None, shared: dict[str, Any] | None = None) -> Part:
    """In a worker: shard ``index`` of the sharded unit (or shared data) ``key`` -> its part
    (the driver merges the parts and writes the unit's files); ``state`` is what the driver
    computed for every shard of the unit, ``shared`` the refs of the data it needs."""
    exp = _adopt_shared(_shipped(box), shared)
    with tempfile.TemporaryDirectory(prefix="facerobust-shard-") as tmp:
        fn = sharded_of(_planned(exp, plan_units, Path(tmp))[key])
        if fn is None:
            raise TypeError(f"unit {key} is not sharded")
        if state is not None and fn.adopt is not None:
            fn.adopt(state)
        return fn.run(index)


def _write_files(out: Path, files: dict[str, bytes]) -> None:
    root = out.resolve()
    for rel, blob in files.items():
        path = (root / rel).resolve()
        if root not in path.parents:
            raise ValueError(f"a Ray worker returned a file outside the run folder: {rel}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)


class _Collector:
    """The driver's side: saves each finished unit, and each shard's part until its unit (or
    shared data) is complete, then merges it; merged shared data goes to ``on_shared``."""

    def __init__(self, store: RunStore, bar: tqdm,
                 on_shared: Callable[[str, Part], None]) -> None:
        self.store, self.bar, self.on_shared = store, bar, on_shared
        self.parts: dict[str, tuple[str, ShardedUnit, ShardParts, list[Part | None]]] = {}
        self.shared: set[str] = set()

    def plan(self, key: str, fp: str, fn: ShardedUnit, *, shared: bool = False) -> list[int]:
        """Register a sharded unit (or shared data); returns the shards still to compute."""
        if shared:
            self.shared.add(key)
        bounds = fn.bounds()
        saved = ShardParts(self.store, key, fp, bounds)
        parts = [saved.load(i) for i in range(len(bounds))]
        self.parts[key] = (fp, fn, saved, parts)
        todo = [i for i, p in enumerate(parts) if p is None]
        log_reuse(key, [p is not None for p in parts])
        if not todo:
            self._merge(key)
        return todo

    def unit_done(self, key: str, fp: str, payload: dict[str, Any]) -> None:
        self.store.save(key, fp, payload)
        log.info("finished %s in %.1fs (ray)", key, payload["seconds"])
        self.bar.set_postfix_str(key)
        self.bar.update(1)

    def shard_done(self, key: str, index: int, part: Part) -> None:
        _, _, saved, parts = self.parts[key]
        saved.save(index, part)
        parts[index] = part
        if all(p is not None for p in parts):
            self._merge(key)

    def _merge(self, key: str) -> None:
        fp, fn, saved, parts = self.parts.pop(key)
        merged = fn.merge([p for p in parts if p is not None])
        if key in self.shared:
            self.store.save_tensors(key, fp, merged)
            log.info("computed %s (ray)", key)
            self.on_shared(key, merged)
        else:
            self.unit_done(key, fp, merged.to_dict())
        saved.drop()


def _result(ray: Any, ref: Any, what: str) -> Any:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        cause = getattr(err, "cause", None)
        if isinstance(cause, Exception):  # the unit's own error, no remote trace
            raise cause from None
        raise
    except ray.exceptions.RayError as err:  # a worker or node lost
        raise OSError(f"{what}: Ray failed ({type(err).__name__}: {err}); finished units and "
                      "shards are saved, rerun to resume") from None


def _order(unit: tuple[str, str, Any]) -> int:
    """Submission order: units whose shards need a state the driver computes (defense,
    fusion) last, so the cluster works while the driver computes it."""
    fn = sharded_of(unit[2])
    return 1 if fn is not None and fn.state is not None else 0


class _Submitter:
    """Submits the Ray tasks of every unit, its shards, and the shards of the data units
    share (a unit needing shared data is submitted once that data is in the object store)."""

    def __init__(self, ray: Any, box: list[Any], plan: Planner, store: RunStore,
                 bar: tqdm) -> None:
        self.ray, self.box, self.plan, self.store = ray, box, plan, store
        self.unit_task = ray.remote(num_cpus=1)(compute_unit)
        self.shard_task = ray.remote(num_cpus=1)(compute_shard)
        self.collect = _Collector(store, bar, self._shared_ready)
        self.pending: dict[Any, tuple[str, str, int | None]] = {}
        self.shared: dict[str, Any] = {}  # shared data key -> object ref
        self.started: set[str] = set()
        self.waiting: list[tuple[str, str, Any]] = []

    def submit(self, key: str, fp: str, fn: Any) -> None:
        needs = getattr(fn, "needs", [])
        if not all(n.key in self.shared for n in needs):
            self.waiting.append((key, fp, fn))
            for need in needs:
                self._start_shared(need)
            return
        refs = {n.key: self.shared[n.key] for n in needs}
        shards = sharded_of(fn)
        if shards is None:
            self.pending[self.unit_task.remote(self.box, key, self.plan, refs)] = \
                (key, fp, None)
            return
        todo = self.collect.plan(key, fp, shards)
        state = self.ray.put(shards.state()) if todo and shards.state is not None else None
        for i in todo:
            self.pending[self.shard_task.remote(self.box, key, i, self.plan, state,
                                                refs or None)] = (key, fp, i)
        if todo:
            log.info("%s: %d shard tasks submitted", key, len(todo))

    def _start_shared(self, need: SharedData) -> None:
        if need.key in self.started:
            return
        self.started.add(need.key)
        saved = self.store.load_tensors(need.key, need.fingerprint)
        if saved is not None:
            self._shared_ready(need.key, saved)
            return
        for i in self.collect.plan(need.key, need.fingerprint, need.shards, shared=True):
            self.pending[self.shard_task.remote(self.box, need.key, i, self.plan)] = \
                (need.key, need.fingerprint, i)

    def _shared_ready(self, key: str, data: Part) -> None:
        self.shared[key] = self.ray.put(data)
        ready = [u for u in self.waiting
                 if all(n.key in self.shared for n in getattr(u[2], "needs", []))]
        self.waiting = [u for u in self.waiting if not any(u is r for r in ready)]
        for unit in ready:
            self.submit(*unit)

    def collect_one(self, ref: Any) -> None:
        key, fp, index = self.pending.pop(ref)
        if index is not None:
            self.collect.shard_done(key, index,
                                    _result(self.ray, ref, f"unit {key} shard {index}"))
            return
        payload, files = _result(self.ray, ref, f"unit {key}")
        _write_files(self.store.out, files)
        self.collect.unit_done(key, fp, payload)


def run_on_ray(exp: Experiment, todo: list[tuple[str, str, Any]], store: RunStore, bar: tqdm,
               *, plan: Planner, address: str | None = None, num_cpus: int | None = None
               ) -> None:
    """Compute the units ``todo`` ((key, fingerprint, planned function) triples) as Ray tasks
    -- one per unit, or one per shard not yet saved of a sharded unit or of the data units
    share -- saving each result into ``store`` as it completes. Workers rebuild each unit
    with ``plan`` (the audit's :func:`~facerobust.eval.audit.plan_units`, passed in: the
    executor sits below the audit)."""
    ray = require_ray()
    started = connect(ray, address, num_cpus)
    jobs: _Submitter | None = None
    try:
        box = [ray.put(ray.cloudpickle.dumps(shippable(exp)))]
        jobs = _Submitter(ray, box, plan, store, bar)
        for key, fp, fn in sorted(todo, key=_order):
            jobs.submit(key, fp, fn)
        log.info("ray: %d tasks submitted to %s", len(jobs.pending),
                 address or "a local cluster")
        while jobs.pending:
            ready, _ = ray.wait(list(jobs.pending), num_returns=1)
            for ref in ready:
                jobs.collect_one(ref)
        if jobs.waiting:
            raise RuntimeError(f"units never submitted: {[k for k, _, _ in jobs.waiting]}")
    finally:
        for ref in jobs.pending if jobs is not None else []:
            ray.cancel(ref)
        if started:
            ray.shutdown()
