"""``facerobust attack`` and ``facerobust defend`` as one-unit audits: each builds an
:class:`~facerobust.eval.config.AuditConfig`, writes it beside the results as ``config.toml``
(so ``facerobust audit DIR/config.toml`` reruns it) and runs the audit path, producing the
same ``results.json`` schema and report as ``facerobust audit``."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facerobust.data import resolve_dataset
from facerobust.eval.audit import run_audit
from facerobust.eval.certify_config import CertifyConfig
from facerobust.eval.config import (
    AttackConfig,
    AuditConfig,
    DataConfig,
    DefenseConfig,
    IdentificationConfig,
    ModelsConfig,
    RunConfig,
    parse_config,
    parse_toml,
)
from facerobust.eval.detector_config import DetectorConfig
from facerobust.eval.store import prepare_output_folder
from facerobust.eval.tasks import GOALS, IDENTIFICATION_GOALS


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
            if value is not None and not (f.name == "victim_weights" and not value):
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
    for cert in cfg.certify:
        table("[[certify]]", cert)
    for phys in cfg.physical:
        table("[[physical]]", phys)
    return "\n".join(lines)


def _data(run: CommandRun, *, clean_pairs_per_fold: int, attack_pairs: int) -> DataConfig:
    """``run.dataset`` (``--data DIR``: the dataset itself or a folder holding it) with the
    pair counts of a command."""
    root = "" if run.data is None else str(resolve_dataset(run.dataset, run.data))
    return DataConfig(dataset=run.dataset, root=root,
                      clean_pairs_per_fold=clean_pairs_per_fold, attack_pairs=attack_pairs)


def _identification_for(goal: str, head: str) -> IdentificationConfig:
    return IdentificationConfig(enabled=goal in IDENTIFICATION_GOALS or bool(head), head=head)


def _finish(cfg: AuditConfig, run: CommandRun, command: str) -> Path:
    text = config_to_toml(cfg)
    cfg = parse_config(parse_toml(text))  # the same validation as an audit config
    prepare_output_folder(run.out, force=run.force)
    (run.out / "config.toml").write_text(text, encoding="utf-8")
    return run_audit(cfg, run.out, progress=run.progress, config_text=text, command=command,
                     force=run.force)  # ``data`` is resolved into cfg.data.root already


def _positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _check_budget(epsilons: tuple[float, ...], goal: str, n: int) -> None:
    if not epsilons:
        raise ValueError("epsilons is empty")
    if goal not in GOALS:
        raise ValueError(f"goal must be one of {', '.join(GOALS)}, got {goal!r}")
    _positive("n", n)


@dataclass(frozen=True)
class CommandRun:
    """What every one-unit audit command shares (``--model``, ``--dataset``, ``--data``,
    ``--head``, ``--batch-size``, ``--seed``, ``--out``, ``--no-progress``, ``--force``).
    Sizes are validated by the audit config it becomes (same messages as ``audit``)."""

    model: str
    out: Path
    dataset: str = "lfw-gray"
    data: Path | None = None  # the dataset itself or a folder holding ``<dataset>/``
    head: str = ""  # identification head saved by ``train-head``
    batch_size: int = 16
    seed: int = 0
    progress: bool = True
    force: bool = False

    def __post_init__(self) -> None:
        for name in ("model", "dataset"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty name, got "
                                 f"{getattr(self, name)!r}")
        if not isinstance(self.out, Path):
            raise TypeError(f"out must be a Path, got {type(self.out).__name__}")


@dataclass(frozen=True)
class AttackCommand:
    """``facerobust attack``: one attack with one goal on ``n`` samples (plus transfer to
    ``others``); with ``surrogates`` it is crafted on that ensemble instead."""

    attack: str
    norm: str
    epsilons: tuple[float, ...]
    goal: str
    n: int
    steps: int | None = None
    queries: int | None = None
    others: tuple[str, ...] = ()
    surrogates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "epsilons", tuple(float(e) for e in self.epsilons))
        _check_budget(self.epsilons, self.goal, self.n)


@dataclass(frozen=True)
class DefendCommand:
    """``facerobust defend``: each defense in ``specs`` judged under the naive, direct
    (unless ``direct`` is off), adaptive (``eot`` samples) and optional black-box columns."""

    specs: tuple[str, ...]
    attack: str
    norm: str
    epsilons: tuple[float, ...]
    goal: str
    n: int
    steps: int | None = None
    eot: int | None = None
    direct: bool = True
    blackbox_queries: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "specs", tuple(self.specs))
        object.__setattr__(self, "epsilons", tuple(float(e) for e in self.epsilons))
        if not self.specs:
            raise ValueError("specs is empty: name at least one defense")
        _check_budget(self.epsilons, self.goal, self.n)


@dataclass(frozen=True)
class DetectCommand:
    """``facerobust detect`` (study mode): fit, calibrate and attack each detector on the
    victim's identification task with ``identities`` enrolled people and ``n`` probes."""

    detectors: tuple[str, ...]
    n: int = 120
    identities: int = 40
    variants: tuple[str, ...] = ()  # trajectory variants (default: all four)
    fpr: float = 0.05
    adaptive_epsilons: tuple[float, ...] = (2 / 255, 4 / 255, 8 / 255)
    adaptive_samples: int = 24
    # photos per person: at most ``images_per_identity`` (``gallery_per_identity`` enrolled,
    # the rest probes), people with fewer than ``min_images`` left out
    images_per_identity: int = 20
    gallery_per_identity: int = 10
    min_images: int = 15
    # fit the detectors on ``fit_identities`` people of ``fit_dataset`` (identification keys)
    fit_dataset: str = ""
    fit_identities: int = 0
    nearest: int = 0  # trajectory: read the K nearest identities (0: one input per person)

    def __post_init__(self) -> None:
        object.__setattr__(self, "detectors", tuple(self.detectors))
        object.__setattr__(self, "adaptive_epsilons",
                           tuple(float(e) for e in self.adaptive_epsilons))
        if not self.detectors:
            raise ValueError("detectors is empty: name at least one detector")
        _positive("n", self.n)


@dataclass(frozen=True)
class CertifyCommand:
    """``facerobust certify``: randomized-smoothing certificates of the victim's decisions
    (the keys of a ``[[certify]]`` table)."""

    certify: CertifyConfig
    weights: str = ""  # fine-tuned victim weights (models.victim_weights)

    def __post_init__(self) -> None:
        if not isinstance(self.certify, CertifyConfig):
            raise TypeError(f"certify must be a CertifyConfig, got "
                            f"{type(self.certify).__name__}")


def run_certify(command: CertifyCommand, run: CommandRun) -> Path:
    """Certificates of ``run.model``'s decisions at every noise level of the command, as a
    one-unit audit (``config.toml`` holds the ``[[certify]]`` table)."""
    c = command.certify
    ident = _identification_for("untargeted" if c.goal == "identification" else "dodging",
                                run.head)
    if c.goal == "identification" and not run.head:  # a small split: certificates are slow
        ident = dataclasses.replace(ident, identities=20, images_per_identity=12,
                                    gallery_per_identity=8, min_images=12)
    cfg = AuditConfig(
        run=RunConfig(name=f"facerobust certify: {c.goal} of {run.model}, sigma "
                           + ", ".join(f"{s:g}" for s in c.sigma),
                      seed=run.seed, batch_size=run.batch_size),
        data=_data(run, clean_pairs_per_fold=pairs_per_fold(c.samples), attack_pairs=1),
        identification=dataclasses.replace(ident, probes=c.samples),
        models=ModelsConfig(victim=run.model, victim_weights=command.weights), certify=(c,))
    return _finish(cfg, run, "certify")


def run_attack(command: AttackCommand, run: CommandRun) -> Path:
    """One attack with one goal on ``run.model`` (plus transfer to ``command.others``); with
    ``surrogates`` it is crafted on that ensemble instead (they join the loaded models)."""
    c = command
    ident = _identification_for(c.goal, run.head)
    if c.goal in IDENTIFICATION_GOALS:
        ident = dataclasses.replace(ident, probes=c.n)
    cfg = AuditConfig(
        run=RunConfig(name=f"facerobust attack: {c.attack}-{c.norm} {c.goal} on {run.model}",
                      seed=run.seed, batch_size=run.batch_size),
        data=_data(run, clean_pairs_per_fold=pairs_per_fold(c.n), attack_pairs=c.n),
        identification=ident,
        models=ModelsConfig(victim=run.model, others=tuple(dict.fromkeys(
            [*c.others, *[m for m in c.surrogates if m != run.model]]))),
        attacks=(AttackConfig(name=c.attack, epsilons=c.epsilons, norm=c.norm, steps=c.steps,
                              goals=(c.goal,), queries=c.queries,
                              surrogates=c.surrogates),))
    return _finish(cfg, run, "attack")


def run_defend(command: DefendCommand, run: CommandRun) -> Path:
    """Each defense in ``command.specs`` in front of ``run.model``, judged under every attack
    column."""
    c = command
    ident = _identification_for(c.goal, run.head)
    defenses = tuple(DefenseConfig(spec=s, attack=c.attack, norm=c.norm, epsilons=c.epsilons,
                                   steps=c.steps, goal=c.goal, eot=c.eot, samples=c.n,
                                   direct=c.direct, blackbox_queries=c.blackbox_queries)
                     for s in c.specs)
    cfg = AuditConfig(
        run=RunConfig(name=f"facerobust defend: {', '.join(c.specs)} on {run.model} ({c.goal})",
                      seed=run.seed, batch_size=run.batch_size),
        data=_data(run, clean_pairs_per_fold=pairs_per_fold(c.n), attack_pairs=c.n),
        identification=dataclasses.replace(ident, probes=c.n),
        models=ModelsConfig(victim=run.model), defenses=defenses)
    return _finish(cfg, run, "defend")


def run_detect(command: DetectCommand, run: CommandRun) -> Path:
    """Fit, calibrate and attack each named detector on ``run.model``'s identification
    task."""
    c = command
    entries = tuple(DetectorConfig(name=d, variants=c.variants if d == "trajectory" else (),
                                   options={"nearest": c.nearest}
                                   if c.nearest and d == "trajectory" else {},
                                   samples=c.n, fpr=c.fpr,
                                   adaptive_epsilons=c.adaptive_epsilons,
                                   adaptive_samples=c.adaptive_samples) for d in c.detectors)
    ident = IdentificationConfig(enabled=True, head=run.head, identities=c.identities,
                                 images_per_identity=c.images_per_identity,
                                 gallery_per_identity=c.gallery_per_identity,
                                 min_images=c.min_images, probes=c.n,
                                 fit_dataset=c.fit_dataset, fit_identities=c.fit_identities)
    cfg = AuditConfig(
        run=RunConfig(name=f"facerobust detect: {', '.join(c.detectors)} on {run.model}",
                      seed=run.seed, batch_size=run.batch_size),
        data=_data(run, clean_pairs_per_fold=5, attack_pairs=4),
        identification=ident, models=ModelsConfig(victim=run.model), detectors=entries)
    return _finish(cfg, run, "detect")
