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

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from facerobust.eval import audit_summary as summary
from facerobust.eval import units as U
from facerobust.eval.config import AuditConfig
from facerobust.eval.dataset_info import describe_dataset
from facerobust.eval.experiment import Experiment
from facerobust.eval.ray_executor import require_ray, run_on_ray
from facerobust.eval.results import (
    AttackUnit,
    CleanUnit,
    DefenseUnit,
    FusionUnit,
    MinimalUnit,
    Unit,
)
from facerobust.eval.results_audit import DatasetFacts, Models, Results
from facerobust.eval.results_detection import DetectorUnit
from facerobust.eval.results_file import write_result_file
from facerobust.eval.shards import ShardedUnit, ShardParts, run_here
from facerobust.eval.store import RunLock, RunStore, prepare_output_folder
from facerobust.info import collect

log = logging.getLogger("facerobust.audit")
# (key, fingerprint, the function computing it: a plain one or a ShardedUnit)
PlannedUnit = tuple[str, str, Callable[[], Unit]]


def unit_seed(seed: int, key: str) -> int:
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16)


def model_details(model: torch.nn.Module) -> dict[str, Any]:
    return {"name": getattr(model, "name", type(model).__name__),
            "metric": getattr(model, "metric", None),
            "threshold": float(getattr(model, "threshold", float("nan"))),
            "embedding_dim": getattr(model, "embedding_dim", None)}


def plan_units(cfg: AuditConfig, exp: Experiment, out: Path) -> list[PlannedUnit]:
    """Every unit of ``cfg``: (key, fingerprint of its own settings, the function computing
    it; files it writes go under ``out``)."""
    victim = cfg.models.victim
    units: list[PlannedUnit] = []
    for name in exp.models:
        units.append((f"clean-{name}", exp.fingerprint("clean", name),
                      partial(exp.clean_unit, name)))
    for atk in cfg.attacks:
        for sources in atk.sources(victim, cfg.models.others):
            one = replace(atk, surrogates=sources, all_sources=False)
            for goal in atk.goals:
                key = f"attack-{victim}-{one.key}-{goal}"
                own = {**asdict(one), "goals": None}
                shards = U.AttackShards(exp, one, goal, key, unit_seed(cfg.run.seed, key), out)
                units.append((key, exp.fingerprint("attack", own, goal),
                              ShardedUnit(shards.bounds, shards.run, shards.merge)))
    if cfg.minimal.enabled:
        key = f"minimal-{victim}"
        minimal = U.MinimalShards(exp, unit_seed(cfg.run.seed, key))
        units.append((key, exp.fingerprint("minimal", asdict(cfg.minimal)),
                       ShardedUnit(minimal.bounds, minimal.run, minimal.merge)))
    for i, dcfg in enumerate(cfg.defenses):
        key = f"defense-{i}-{victim}"
        units.append((key, exp.fingerprint("defense", asdict(dcfg)),
                      partial(U.defense_unit, exp, dcfg, unit_seed(cfg.run.seed, key))))
    for i, fcfg in enumerate(cfg.fusions):
        key = f"fusion-{i}"
        units.append((key, exp.fingerprint("fusion", asdict(fcfg)),
                      partial(U.fusion_unit, exp, fcfg, unit_seed(cfg.run.seed, key))))
    for i, det in enumerate(cfg.detectors):
        key = f"detector-{i}-{det.name}"
        units.append((key, exp.fingerprint("detector", asdict(det)),
                      partial(U.detector_unit, exp, det, key,
                              unit_seed(cfg.run.seed, key), out)))
    return units


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
            if isinstance(fn, ShardedUnit):
                unit = run_here(fn, key, fp, store, bar.set_postfix_str)
            else:
                unit = fn()
            payload = unit.to_dict()
            if not payload.get("seconds"):
                payload["seconds"] = time.perf_counter() - tic
            store.save(key, fp, payload)
            if isinstance(fn, ShardedUnit):  # the merged unit is saved: its parts are spent
                ShardParts(store, key, fp, fn.bounds()).drop()
            log.info("finished %s in %.1fs", key, payload["seconds"])
            bar.update(1)

    def assemble(self, exp: Experiment, store: RunStore, keys: list[str], started: str
                 ) -> Results:

        units = {k: store.load(k) for k in keys}
        victim = self.cfg.models.victim

        def typed(prefix: str, cls: type[Any]) -> list[Any]:
            return [cls.from_dict(v, where=k) for k, v in units.items() if k.startswith(prefix)]

        minimal = units.get(f"minimal-{victim}")
        results = Results(
            command=self.command, config=self.cfg.to_dict(), config_text=self.config_text,
            config_fingerprint=self.cfg.fingerprint(), environment=collect(),
            seed=self.cfg.run.seed, started=started,
            finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            dataset=DatasetFacts.from_dict(describe_dataset(exp), where="dataset"),
            models=Models(victim=victim, others=[m for m in exp.models if m != victim],
                          missing=exp.missing_models,
                          details={n: model_details(m) for n, m in exp.models.items()}),
            clean={k.removeprefix("clean-"): CleanUnit.from_dict(v, where=k)
                   for k, v in units.items() if k.startswith("clean-")},
            attacks=typed("attack-", AttackUnit),
            minimal=None if minimal is None else MinimalUnit.from_dict(minimal, where="minimal"),
            defenses=typed("defense-", DefenseUnit), fusions=typed("fusion-", FusionUnit),
            detectors=typed("detector-", DetectorUnit))
        return summary.add_derived(results)


def run_audit(cfg: AuditConfig, out: str | Path, *, data: Path | None = None,
              progress: bool = True, config_text: str = "", command: str = "audit",
              force: bool = False, address: str | None = None) -> Path:
    """Run or resume an audit; returns the path of ``results.json``. ``cfg.run.executor``
    picks where units run ("ray": Ray tasks on the cluster at ``address``, or a local one)."""
    return Audit(cfg, Path(out), data=data, progress=progress, config_text=config_text,
                 command=command, force=force, address=address).run()
