"""``facerobust audit``: one reproducible experiment from a TOML config to ``report.html``.

Order: data and chips -> clean figures for every model -> attack units on the victim (each
re-scored on every other model for the transfer matrix) -> minimal perturbation -> defenses
-> ``results.json`` -> report. Every unit is saved atomically as it finishes
(:class:`~facerobust.eval.store.RunStore`), and each unit seeds its own generator from the run
seed and its key, so a resumed run gives the same results as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from facerobust.eval import audit_attacks as attack_steps
from facerobust.eval import audit_steps as steps
from facerobust.eval.audit_data import identity_split, pairs_to_indices, select_pairs
from facerobust.eval.config import IDENTIFICATION_GOALS, AuditConfig
from facerobust.eval.store import RunStore, write_json_atomic

SCHEMA_VERSION = 1
log = logging.getLogger("facerobust.audit")


def unit_seed(seed: int, key: str) -> int:
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16)


class Audit:
    """Runs (or resumes) one audit into ``out``."""

    def __init__(self, cfg: AuditConfig, out: Path, *, data: Path | None = None,
                 progress: bool = True, config_text: str = "") -> None:
        self.cfg, self.out, self.progress = cfg, Path(out), progress
        self.data_override = data
        self.config_text = config_text
        self.store = RunStore(self.out, cfg.fingerprint())
        self.ctx: steps.Context | None = None

    # ----------------------------------------------------------------------------------- setup
    def _setup_logging(self) -> logging.Handler:
        handler = logging.FileHandler(self.out / "audit.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        return handler

    def _prepare(self) -> steps.Context:
        from facerobust import models
        from facerobust.data import resolve_dataset
        from facerobust.data.chips import load_chips
        from facerobust.data.lfw import LFWPairs

        cfg = self.cfg
        explicit = Path(cfg.data.root) if cfg.data.root else self.data_override
        root = resolve_dataset(cfg.data.dataset, explicit)
        lfw = LFWPairs(root)
        chosen = select_pairs(lfw.pairs, cfg.data.clean_pairs_per_fold)
        paths = sorted({p.path_a for p in chosen} | {p.path_b for p in chosen})
        split = None
        if cfg.identification.enabled:
            ident = cfg.identification
            split = identity_split(lfw.people(), identities=ident.identities,
                                   images=ident.images_per_identity,
                                   gallery=ident.gallery_per_identity,
                                   min_images=ident.min_images, seed=cfg.run.seed)
            paths = sorted(set(paths) | set(split.train_paths) | set(split.probe_paths))
        log.info("aligning %d images from %s", len(paths), root)
        chips = load_chips(paths, cache=True, progress=self.progress)
        pairs, dropped = pairs_to_indices(chosen, chips.index)
        names = [cfg.models.victim, *[m for m in cfg.models.others if m != cfg.models.victim]]
        loaded, missing = {}, {}
        for name in names:
            try:
                loaded[name] = models.load(name)
            except FileNotFoundError as err:
                if name == cfg.models.victim:
                    raise
                missing[name] = str(err)
                log.warning("transfer model %s unavailable: %s", name, err)
        for model in loaded.values():
            model.requires_grad_(False)
        return steps.Context(cfg=cfg, store=self.store, out=self.out, root=root, chips=chips,
                             pairs=pairs, dropped_pairs=dropped, split=split, models=loaded,
                             missing_models=missing, progress=self.progress)

    # ------------------------------------------------------------------------------------ plan
    def plan(self, ctx: steps.Context) -> list[tuple[str, Any]]:
        cfg, victim = self.cfg, self.cfg.models.victim
        units: list[tuple[str, Any]] = []
        for name in ctx.models:
            units.append((f"clean-{name}", lambda n=name: steps.clean_unit(ctx, n)))
        for atk in cfg.attacks:
            for goal in atk.goals:
                key = f"attack-{victim}-{atk.key}-{goal}"
                seed = unit_seed(cfg.run.seed, key)
                units.append((key, lambda a=atk, g=goal, k=key, s=seed:
                              attack_steps.attack_unit(ctx, a, g, k, s)))
        if cfg.minimal.enabled:
            key = f"minimal-{victim}"
            units.append((key, lambda k=key: attack_steps.minimal_unit(
                ctx, unit_seed(cfg.run.seed, k))))
        for i, dcfg in enumerate(cfg.defenses):
            key = f"defense-{i}-{victim}"
            units.append((key, lambda d=dcfg, k=key: attack_steps.defense_unit(
                ctx, d, unit_seed(cfg.run.seed, k))))
        return units

    def run(self) -> Path:
        handler = self._setup_logging()
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        try:
            torch.manual_seed(self.cfg.run.seed)
            np.random.seed(self.cfg.run.seed % (2**32))
            ctx = self.ctx = self._prepare()
            units = self.plan(ctx)
            todo = [(k, fn) for k, fn in units if not self.store.has(k)]
            log.info("%d units, %d already done", len(units), len(units) - len(todo))
            bar = tqdm(total=len(units), initial=len(units) - len(todo), desc="audit",
                       unit="unit", disable=not self.progress)
            for key, fn in todo:
                bar.set_postfix_str(key)
                tic = time.perf_counter()
                payload = fn()
                payload.setdefault("seconds", time.perf_counter() - tic)
                self.store.save(key, payload)
                log.info("finished %s in %.1fs", key, payload["seconds"])
                bar.update(1)
            bar.close()
            results = self.assemble(ctx, [k for k, _ in units], started)
            results_path = self.out / "results.json"
            write_json_atomic(results_path, results)
            from facerobust.report import render_report

            render_report(results_path)
            log.info("wrote %s and report.html", results_path)
            return results_path
        finally:
            log.removeHandler(handler)
            handler.close()

    # -------------------------------------------------------------------------------- assemble
    def assemble(self, ctx: steps.Context, keys: list[str], started: str) -> dict[str, Any]:
        from facerobust.eval import audit_summary as summary
        from facerobust.info import collect

        units = {k: self.store.load(k) for k in keys}
        victim = self.cfg.models.victim
        clean = {k.removeprefix("clean-"): v for k, v in units.items() if k.startswith("clean-")}
        attacks = [v for k, v in units.items() if k.startswith("attack-")]
        defenses = [v for k, v in units.items() if k.startswith("defense-")]
        minimal = units.get(f"minimal-{victim}")
        results: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "config": self.cfg.to_dict(),
            "config_text": self.config_text,
            "config_fingerprint": self.cfg.fingerprint(),
            "environment": collect(),
            "seed": self.cfg.run.seed,
            "started": started,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "dataset": {
                "name": self.cfg.data.dataset, "root": str(ctx.root),
                "protocol": f"LFW pairs.txt, {self.cfg.data.clean_pairs_per_fold} matched + "
                            f"{self.cfg.data.clean_pairs_per_fold} mismatched pairs per fold",
                "n_images": len(ctx.chips.paths), "pairs_dropped": ctx.dropped_pairs,
                "skipped": [{"path": str(s.path), "reason": s.reason}
                            for s in ctx.chips.skipped],
            },
            "models": {"victim": victim, "others": [m for m in ctx.models if m != victim],
                       "missing": ctx.missing_models,
                       "details": {n: steps.model_details(m) for n, m in ctx.models.items()}},
            "clean": clean,
            "attacks": attacks,
            "minimal": minimal,
            "defenses": defenses,
        }
        return summary.add_derived(results)


def run_audit(cfg: AuditConfig, out: str | Path, *, data: Path | None = None,
              progress: bool = True, config_text: str = "") -> Path:
    """Run or resume an audit; returns the path of ``results.json``."""
    if any(g in IDENTIFICATION_GOALS for a in cfg.attacks for g in a.goals) and \
            not cfg.identification.enabled:
        raise ValueError("identification goals need [identification] enabled = true")
    return Audit(cfg, Path(out), data=data, progress=progress, config_text=config_text).run()
