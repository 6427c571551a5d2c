"""The ``ray`` executor of an audit: the units not yet in the run store become Ray tasks.

* The driver prepares the :class:`~facerobust.eval.experiment.Experiment` as the local
  executor does, computes what units share and cache in the run store (every model's
  embeddings and identification heads), and puts the experiment -- chips, loaded models,
  pairs, split -- into Ray's object store once. Each worker process fetches it once and keeps
  it for every unit it runs (models travel pickled with their weights, so a stand-in model
  reaches workers without patching them).
* A worker rebuilds the unit from the same plan (:func:`facerobust.eval.audit.plan_units`), so
  each unit keeps its own seed (``unit_seed(run seed, key)``) and its result equals the
  single-process one. Files a unit writes (example grids, fitted detectors) are returned to
  the driver, which writes them into the run folder: workers need no shared disk.
* The driver saves each result into the same :class:`~facerobust.eval.store.RunStore` as it
  completes, so a killed run resumes exactly as with the local executor.
* Workers run torch on one thread each; a task asks Ray for one CPU.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from facerobust.eval.experiment import Experiment
from facerobust.eval.store import RunStore

log = logging.getLogger("facerobust.audit")
_SHIPPED: dict[str, Experiment] = {}  # in a worker process: the experiment, by object id
INSTALL_HINT = 'pip install "facerobust[scale]"'


def require_ray() -> Any:
    """The ``ray`` module, or a ValueError naming the key and how to install it."""
    try:
        import ray
    except ImportError as err:
        raise ValueError(f'run.executor = "ray" needs the ray package ({err}); '
                         f"install it with: {INSTALL_HINT}") from None
    return ray


def shippable(exp: Experiment) -> Experiment:
    """``exp`` with the state units share computed once (embeddings, identification heads;
    cached in the run store) and no store or progress bars: what workers receive."""
    for name in exp.models:
        exp.embeddings(name)
    if exp.split is not None:
        for name in exp.models:
            exp.identification_model(name)
    return dataclasses.replace(exp, store=None, progress=False)


def compute_unit(box: list[Any], key: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """In a worker: unit ``key`` of the shipped experiment -> (result payload, the files it
    wrote, by path relative to the run folder). ``box`` wraps the experiment's object ref so
    that Ray hands the ref itself, fetched once per worker process."""
    import ray

    from facerobust.eval.audit import plan_units

    torch.set_num_threads(1)
    ref = box[0]
    exp = _SHIPPED.get(ref.hex())
    if exp is None:  # unpickled here, not zero-copy: arrays and tensors stay writable
        _SHIPPED.clear()
        exp = _SHIPPED[ref.hex()] = pickle.loads(ray.get(ref))
    torch.manual_seed(exp.cfg.run.seed)
    np.random.seed(exp.cfg.run.seed % (2**32))
    with tempfile.TemporaryDirectory(prefix="facerobust-unit-") as tmp:
        out = Path(tmp)
        fn = {k: f for k, _, f in plan_units(exp.cfg, exp, out)}[key]
        tic = time.perf_counter()
        payload = fn().to_dict()
        if not payload.get("seconds"):
            payload["seconds"] = time.perf_counter() - tic
        files = {p.relative_to(out).as_posix(): p.read_bytes()
                 for p in sorted(out.rglob("*")) if p.is_file()}
    return payload, files


def _write_files(out: Path, files: dict[str, bytes]) -> None:
    root = out.resolve()
    for rel, blob in files.items():
        path = (root / rel).resolve()
        if root not in path.parents:
            raise ValueError(f"a Ray worker returned a file outside the run folder: {rel}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)


def connect(ray: Any, address: str | None, num_cpus: int | None = None) -> bool:
    """Join the cluster at ``address`` or start a local one (``num_cpus``, default every CPU);
    ``True`` when this call started Ray (and should shut it down)."""
    if ray.is_initialized():
        return False
    if address:
        try:
            ray.init(address=address, logging_level=logging.WARNING)
        except Exception as err:  # Ray raises ConnectionError, RuntimeError, ValueError...
            raise OSError(f"--address {address}: cannot join the Ray cluster ({err})") from None
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                 logging_level=logging.WARNING)
    return True


def run_on_ray(exp: Experiment, todo: list[tuple[str, str]], store: RunStore, bar: tqdm, *,
               address: str | None = None, num_cpus: int | None = None) -> None:
    """Compute the units ``todo`` ((key, fingerprint) pairs) as Ray tasks, saving each result
    into ``store`` as it completes."""
    ray = require_ray()
    started = connect(ray, address, num_cpus)
    pending: dict[Any, tuple[str, str]] = {}
    try:
        box = [ray.put(ray.cloudpickle.dumps(shippable(exp)))]
        task = ray.remote(num_cpus=1)(compute_unit)
        pending = {task.remote(box, key): (key, fp) for key, fp in todo}
        log.info("ray: %d units submitted to %s", len(pending), address or "a local cluster")
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                key, fp = pending.pop(ref)
                try:
                    payload, files = ray.get(ref)
                except ray.exceptions.RayTaskError as err:
                    cause = getattr(err, "cause", None)
                    if isinstance(cause, Exception):  # the unit's own error, no remote trace
                        raise cause from None
                    raise
                except ray.exceptions.RayError as err:  # a worker or node lost
                    raise OSError(f"unit {key}: Ray failed ({type(err).__name__}: {err}); "
                                  "finished units are saved, rerun to resume") from None
                _write_files(store.out, files)
                store.save(key, fp, payload)
                log.info("finished %s in %.1fs (ray)", key, payload["seconds"])
                bar.set_postfix_str(key)
                bar.update(1)
    finally:
        for ref in pending:
            ray.cancel(ref)
        if started:
            ray.shutdown()
