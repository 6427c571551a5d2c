"""``facerobust audit``: one reproducible experiment from a config to ``report.html``.

The one path: :class:`~facerobust.eval.config.AuditConfig` -> :class:`~facerobust.eval.
experiment.Experiment` (pairs, identification split, chips, models) -> units (clean for every
model, attack+transfer, minimal perturbation, defenses; :mod:`facerobust.eval.units`), each a
typed result saved atomically as it finishes (:class:`~facerobust.eval.store.RunStore`) ->
``results.json`` (:mod:`facerobust.eval.results`, derived figures from
:mod:`facerobust.eval.audit_summary`) -> ``report.html``. Each unit seeds its own generator
from the run seed and its key, so a resumed run gives the same results as an uninterrupted
one. ``facerobust attack`` and ``facerobust defend`` are one-unit audits on this same path.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from facerobust.eval import audit_summary as summary
from facerobust.eval.config import AuditConfig
from facerobust.eval.dataset_info import describe_dataset
from facerobust.eval.experiment import Experiment
from facerobust.eval.kinds import UNIT_KINDS
from facerobust.eval.ray_executor import require_ray, run_on_ray
from facerobust.eval.results_audit import DatasetFacts, Models, Results
from facerobust.eval.results_file import write_result_file
from facerobust.eval.shards import ShardParts, run_here, sharded_of
from facerobust.eval.store import RunLock, RunStore, prepare_output_folder
from facerobust.eval.unit_kind import PlannedUnit
from facerobust.info import collect

log = logging.getLogger("facerobust.audit")


def model_details(model: torch.nn.Module) -> dict[str, Any]:
    return {"name": getattr(model, "name", type(model).__name__),
            "metric": getattr(model, "metric", None),
            "threshold": float(getattr(model, "threshold", float("nan"))),
            "embedding_dim": getattr(model, "embedding_dim", None)}


def plan_units(cfg: AuditConfig, exp: Experiment, out: Path) -> list[PlannedUnit]:
    """Every unit of ``cfg``, kind by kind (:data:`facerobust.eval.kinds.UNIT_KINDS`): (key,
    fingerprint of its own settings, the function computing it; files go under ``out``)."""
    return [unit for kind in UNIT_KINDS for unit in kind.plan(cfg, exp, out)]


class Audit:
    """Runs (or resumes) one audit into ``out``."""

    def __init__(self, cfg: AuditConfig, out: Path, *, data: Path | None = None,
                 progress: bool = True, config_text: str = "", command: str = "audit",
                 force: bool = False, address: str | None = None) -> None:
        self.cfg, self.progress = cfg, progress
        self.address = address  # Ray cluster address (executor "ray"); None: a local cluster
        self.out = prepare_output_folder(Path(out), force=force)
        self.data_override = data
        self.config_text = config_text
        self.command = command
        self.lock = RunLock(self.out)

    def _setup_logging(self) -> logging.Handler:
        handler = logging.FileHandler(self.out / "audit.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        return handler

    def plan(self, exp: Experiment) -> list[PlannedUnit]:
        """Every unit: (key, fingerprint of its own settings, the function computing it)."""
        return plan_units(self.cfg, exp, self.out)

    def run(self) -> Path:
        self.lock.acquire()
        handler = self._setup_logging()
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        try:
            if self.cfg.run.executor == "ray":
                require_ray()
            store = RunStore(self.out)
            torch.manual_seed(self.cfg.run.seed)
            np.random.seed(self.cfg.run.seed % (2**32))
            exp = Experiment.prepare(self.cfg, data=self.data_override, store=store,
                                     progress=self.progress)
            units = self.plan(exp)
            todo = [(k, fp, fn) for k, fp, fn in units if not store.has(k, fp)]
            done = len(units) - len(todo)
            log.info("%d units, %d already done", len(units), done)
            if done and todo:
                log.info("reusing %d finished units whose settings did not change; computing "
                         "%d (new or changed): %s", done, len(todo),
                         ", ".join(k for k, _, _ in todo))
            bar = tqdm(total=len(units), initial=done, desc=self.command, unit="unit",
                       disable=not self.progress)
            if self.cfg.run.executor == "ray" and todo:
                run_on_ray(exp, todo, store, bar, plan=plan_units, address=self.address)
            elif todo:
                self._run_here(todo, store, bar)
            bar.close()
            results = self.assemble(exp, store, [k for k, _, _ in units], started)
            results_path = write_result_file(self.out / "results.json", results)
            log.info("wrote %s", results_path)
            return results_path
        finally:
            log.removeHandler(handler)
            handler.close()
            self.lock.release()

    @staticmethod
    def _run_here(todo: list[PlannedUnit], store: RunStore, bar: tqdm) -> None:
        for key, fp, fn in todo:
            bar.set_postfix_str(key)
            tic = time.perf_counter()
            shards = sharded_of(fn)
            if shards is not None:  # a Dependent's needs are computed by its shards
                unit = run_here(shards, key, fp, store, bar.set_postfix_str)
            else:
                unit = fn()
            payload = unit.to_dict()
            if not payload.get("seconds"):
                payload["seconds"] = time.perf_counter() - tic
            store.save(key, fp, payload)
            if shards is not None:  # the merged unit is saved: its parts are spent
                ShardParts(store, key, fp, shards.bounds()).drop()
            log.info("finished %s in %.1fs", key, payload["seconds"])
            bar.update(1)

    def assemble(self, exp: Experiment, store: RunStore, keys: list[str], started: str
                 ) -> Results:

        units = {k: store.load(k) for k in keys}
        victim = self.cfg.models.victim
        fields = {kind.field: kind.collect(self.cfg, kind.stored(units)) for kind in UNIT_KINDS}
        results = Results(
            command=self.command, config=self.cfg.to_dict(), config_text=self.config_text,
            config_fingerprint=self.cfg.fingerprint(), environment=collect(),
            seed=self.cfg.run.seed, started=started,
            finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            dataset=DatasetFacts.from_dict(describe_dataset(exp), where="dataset"),
            models=Models(victim=victim, others=[m for m in exp.models if m != victim],
                          missing=exp.missing_models,
                          details={n: model_details(m) for n, m in exp.models.items()}),
            **fields)
        return summary.add_derived(results)


def run_audit(cfg: AuditConfig, out: str | Path, *, data: Path | None = None,
              progress: bool = True, config_text: str = "", command: str = "audit",
              force: bool = False, address: str | None = None) -> Path:
    """Run or resume an audit; returns the path of ``results.json``. ``cfg.run.executor``
    picks where units run ("ray": Ray tasks on the cluster at ``address``, or a local one)."""
    return Audit(cfg, Path(out), data=data, progress=progress, config_text=config_text,
                 command=command, force=force, address=address).run()
