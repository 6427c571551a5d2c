"""``facerobust attack`` and ``facerobust defend`` as one-unit audits: each builds an
:class:`~facerobust.eval.config.AuditConfig`, writes it beside the results as ``config.toml``
(so ``facerobust audit DIR/config.toml`` reruns it) and runs the audit path, producing the
same ``results.json`` schema and report as ``facerobust audit``."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from facerobust.data import resolve_dataset
from facerobust.eval.audit import run_audit
from facerobust.eval.config import (
    AttackConfig,
    AuditConfig,
    DataConfig,
    DefenseConfig,
    IdentificationConfig,
    ModelsConfig,
    RunConfig,
    parse_config,
    tomllib,
)
from facerobust.eval.detector_config import DetectorConfig
from facerobust.eval.store import prepare_output_folder
from facerobust.eval.tasks import IDENTIFICATION_GOALS


def pairs_per_fold(n: int) -> int:
    """Clean pairs of each kind per fold so that about ``n`` correctly decided pairs exist
    for a goal (25% spare for clean errors, capped by LFW's 300)."""
    return min(300, max(3, math.ceil(1.25 * n / 10)))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"


def config_to_toml(cfg: AuditConfig) -> str:
    """TOML text that :func:`facerobust.eval.config.load_config` reads back to ``cfg``."""
    lines: list[str] = []

    def table(header: str, section: Any) -> None:
        lines.append(header)
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if value is not None:
                lines.append(f"{f.name} = {_toml_value(value)}")
        lines.append("")

    for name in ("run", "data", "identification", "models", "minimal"):
        table(f"[{name}]", getattr(cfg, name))
    for atk in cfg.attacks:
        table("[[attack]]", atk)
    for d in cfg.defenses:
        table("[[defense]]", d)
    for det in cfg.detectors:
        table("[[detector]]", det)
    return "\n".join(lines)


def _root(dataset: str, data: Path | None) -> str:
    """``--data DIR``: the dataset itself or a folder holding ``<dataset>/``."""
    if data is None:
        return ""

    return str(resolve_dataset(dataset, data))


def _identification_for(goal: str, head: str) -> IdentificationConfig:
    return IdentificationConfig(enabled=goal in IDENTIFICATION_GOALS or bool(head), head=head)


def _finish(cfg: AuditConfig, out: Path, progress: bool, command: str, force: bool) -> Path:
    text = config_to_toml(cfg)
    cfg = parse_config(tomllib.loads(text))  # the same validation as an audit config
    prepare_output_folder(out, force=force)
    (out / "config.toml").write_text(text, encoding="utf-8")
    return run_audit(cfg, out, progress=progress, config_text=text, command=command,
                     force=force)  # ``data`` is resolved into cfg.data.root already


def run_attack(*, model: str, attack: str, norm: str, epsilons: list[float], goal: str, n: int,
               out: Path, dataset: str = "lfw-gray", data: Path | None = None,
               steps: int | None = None, queries: int | None = None,
               others: tuple[str, ...] = (), head: str = "", batch_size: int = 16,
               surrogates: tuple[str, ...] = (),
               seed: int = 0, progress: bool = True, force: bool = False) -> Path:
    """One attack with one goal on ``model`` (plus transfer to ``others``); with
    ``surrogates`` it is crafted on that ensemble instead (they join the loaded models)."""
    ident = _identification_for(goal, head)
    if goal in IDENTIFICATION_GOALS:
        ident = dataclasses.replace(ident, probes=n)
    cfg = AuditConfig(
        run=RunConfig(name=f"facerobust attack: {attack}-{norm} {goal} on {model}", seed=seed,
                      batch_size=batch_size),
        data=DataConfig(dataset=dataset, root=_root(dataset, data),
                        clean_pairs_per_fold=pairs_per_fold(n), attack_pairs=n),
        identification=ident,
        models=ModelsConfig(victim=model, others=tuple(dict.fromkeys(
            [*others, *[m for m in surrogates if m != model]]))),
        attacks=(AttackConfig(name=attack, epsilons=tuple(epsilons), norm=norm, steps=steps,
                              goals=(goal,), queries=queries,
                              surrogates=tuple(surrogates)),))
    return _finish(cfg, out, progress, "attack", force)


def run_defend(*, model: str, specs: list[str], attack: str, norm: str, epsilons: list[float],
               goal: str, n: int, out: Path, dataset: str = "lfw-gray",
               data: Path | None = None, steps: int | None = None, eot: int | None = None,
               direct: bool = True, blackbox_queries: int = 0, head: str = "",
               batch_size: int = 16, seed: int = 0, progress: bool = True,
               force: bool = False) -> Path:
    """Each defense in ``specs`` in front of ``model``, judged under every attack column."""
    ident = _identification_for(goal, head)
    defenses = tuple(DefenseConfig(spec=s, attack=attack, norm=norm, epsilons=tuple(epsilons),
                                   steps=steps, goal=goal, eot=eot, samples=n, direct=direct,
                                   blackbox_queries=blackbox_queries) for s in specs)
    cfg = AuditConfig(
        run=RunConfig(name=f"facerobust defend: {', '.join(specs)} on {model} ({goal})",
                      seed=seed, batch_size=batch_size),
        data=DataConfig(dataset=dataset, root=_root(dataset, data),
                        clean_pairs_per_fold=pairs_per_fold(n), attack_pairs=n),
        identification=dataclasses.replace(ident, probes=n), models=ModelsConfig(victim=model),
        defenses=defenses)
    return _finish(cfg, out, progress, "defend", force)


def run_detect(*, model: str, detectors: list[str], out: Path, n: int = 120,
               dataset: str = "lfw-gray", data: Path | None = None, identities: int = 40,
               variants: tuple[str, ...] = (), fpr: float = 0.05,
               adaptive_epsilons: tuple[float, ...] = (2 / 255, 4 / 255, 8 / 255),
               adaptive_samples: int = 24, head: str = "", batch_size: int = 16,
               seed: int = 0, progress: bool = True, force: bool = False) -> Path:
    """Fit, calibrate and attack each named detector on ``model``'s identification task."""

    entries = tuple(DetectorConfig(name=d, variants=variants if d == "trajectory" else (),
                                   samples=n, fpr=fpr, adaptive_epsilons=adaptive_epsilons,
                                   adaptive_samples=adaptive_samples) for d in detectors)
    ident = IdentificationConfig(enabled=True, head=head, identities=identities,
                                 images_per_identity=20, gallery_per_identity=10, min_images=15,
                                 probes=n)
    cfg = AuditConfig(
        run=RunConfig(name=f"facerobust detect: {', '.join(detectors)} on {model}", seed=seed,
                      batch_size=batch_size),
        data=DataConfig(dataset=dataset, root=_root(dataset, data), clean_pairs_per_fold=5,
                        attack_pairs=4),
        identification=ident, models=ModelsConfig(victim=model), detectors=entries)
    return _finish(cfg, out, progress, "detect", force)
