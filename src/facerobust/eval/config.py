"""Audit configuration: a TOML file validated into typed dataclasses.

Unknown keys and bad values raise ``ValueError`` naming the key (``attack[1].epsilons``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facerobust.attacks.registry import attack_entry
from facerobust.core.precision import check_precision
from facerobust.data.chips import DETECTORS
from facerobust.data.sources import LAYOUTS
from facerobust.defenses import parse_defense
from facerobust.eval.config_values import parse_fraction

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from facerobust.attacks.threat import Threat, threat_for, threat_names
from facerobust.eval.certify_config import CertifyConfig, parse_certify
from facerobust.eval.detector_config import DetectorConfig, parse_detector
from facerobust.eval.physical_config import PhysicalConfig, parse_physical
from facerobust.eval.results_file import SCHEMA_VERSION
from facerobust.eval.tasks import GOALS, IDENTIFICATION_GOALS, VERIFICATION_GOALS
from facerobust.system.spec import parse_system

NORMS = threat_names()  # the spellings of the `norm` keys ("linf", "l2")
CHIP_VALUES = 3 * 150 * 150  # values of an aligned chip: bounds the largest L2 budget
EXECUTORS = ("local", "ray")
# integer keys that may be left out (None = the attack registry's / EOT's default)
OPTIONAL_INTS = {"steps", "queries", "eot"}


@dataclass(frozen=True)
class RunConfig:
    name: str = "facerobust audit"
    seed: int = 0
    batch_size: int = 16
    executor: str = "local"  # "local" (this process) | "ray" (units as Ray tasks)
    shard_size: int = 128  # samples per shard of an attack / minimal unit (one Ray task each)
    precision: str = "fp32"  # "fp32" | "bf16": attacks' passes (judging is always float32)


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "lfw-gray"  # a name looked up under FACEROBUST_DATA / the cache ...
    root: str = ""  # ... or the dataset folder itself (any layout)
    layout: str = "auto"  # "lfw" (pairs.txt) | "folders" | "listing" | "auto"
    listing: str = ""  # listing file of a flat folder (layout "listing")
    pairs: str = ""  # a pairs.txt-format protocol to use instead of the dataset's / generated
    detector: str = "hog+cnn"  # "hog" | "hog+cnn" (CNN when HOG finds no face) | "cnn"
    clean_pairs_per_fold: int = 300
    attack_pairs: int = 32


@dataclass(frozen=True)
class IdentificationConfig:
    enabled: bool = False
    identities: int = 100
    images_per_identity: int = 20
    gallery_per_identity: int = 10
    min_images: int = 10
    probes: int = 64
    head: str = ""  # a head saved by `facerobust train-head` (defines the identities)
    # detectors fitted on another dataset's people (e.g. "cfp": CFP minus the LFW overlap),
    # judged on this dataset's: `fit_identities` of them join the split (eval/fit_split.py)
    fit_dataset: str = ""
    fit_identities: int = 0


@dataclass(frozen=True)
class ModelsConfig:
    victim: str = "dlib-resnet"
    others: tuple[str, ...] = ()
    victim_weights: str = ""  # a state dict for the victim (e.g. adv-train's model.pt)


@dataclass(frozen=True)
class AttackConfig:
    name: str
    epsilons: tuple[float, ...]
    norm: str = "linf"
    steps: int | None = None
    goals: tuple[str, ...] = ("dodging", "impersonation")
    queries: int | None = None
    surrogates: tuple[str, ...] = ()  # craft on this model / ensemble instead of the victim
    all_sources: bool = False  # every model as source, plus leave-one-out ensembles

    @property
    def threat(self) -> Threat:
        return threat_for(self.norm)

    @property
    def key(self) -> str:
        ens = f"-ens-{'+'.join(self.surrogates)}" if self.surrogates else ""
        return f"{self.name}-{self.norm}{ens}"

    def sources(self, victim: str, others: tuple[str, ...]) -> list[tuple[str, ...]]:
        """The source of every unit of this attack: ``()`` = the victim; with ``all_sources``
        every other model alone and, per target, the ensemble of all the rest."""
        if not self.all_sources:
            return [self.surrogates]
        models = [victim, *[m for m in others if m != victim]]
        out: list[tuple[str, ...]] = [(), *[(m,) for m in models[1:]]]
        if len(models) >= 3:
            out += [tuple(m for m in models if m != target) for target in models]
        return out


@dataclass(frozen=True)
class MinimalConfig:
    enabled: bool = False
    attack: str = "pgd"
    norm: str = "linf"
    steps: int | None = None
    goal: str = "dodging"
    samples: int = 16
    max_epsilon: float = 16 / 255

    @property
    def threat(self) -> Threat:
        return threat_for(self.norm)


@dataclass(frozen=True)
class DefenseConfig:
    spec: str
    attack: str = "pgd"
    norm: str = "linf"
    epsilons: tuple[float, ...] = (2 / 255, 4 / 255, 8 / 255)
    steps: int | None = None
    goal: str = "dodging"
    eot: int | None = None  # EOT draws of the adaptive attack (default 8 if randomised, else 1)
    samples: int = 16
    direct: bool = True  # also attack with autograd through the defense
    blackbox_queries: int = 0  # > 0: also a score-based Square attack with this budget

    @property
    def threat(self) -> Threat:
        return threat_for(self.norm)


@dataclass(frozen=True)
class FusionConfig:
    """Score-level fusion of verification models judged as a defense: the white-box attack on
    the fused verifier (adaptive) vs chips crafted on each single member (transfer)."""

    models: tuple[str, ...]
    attack: str = "pgd"
    norm: str = "linf"
    epsilons: tuple[float, ...] = (4 / 255, 8 / 255)
    steps: int | None = None
    goal: str = "dodging"
    samples: int = 16

    @property
    def threat(self) -> Threat:
        return threat_for(self.norm)


@dataclass(frozen=True)
class AuditConfig:
    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    identification: IdentificationConfig = field(default_factory=IdentificationConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    attacks: tuple[AttackConfig, ...] = ()
    minimal: MinimalConfig = field(default_factory=MinimalConfig)
    defenses: tuple[DefenseConfig, ...] = ()
    fusions: tuple[FusionConfig, ...] = ()
    detectors: tuple[DetectorConfig, ...] = ()
    certify: tuple[CertifyConfig, ...] = ()
    physical: tuple[PhysicalConfig, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Stable hash of the whole configuration and the results schema."""
        return settings_hash(self.to_dict())

    def unit_fingerprint(self, kind: str, *parts: Any, data_override: str = "") -> str:
        """Hash of exactly the settings a unit of ``kind`` (clean, attack, minimal, defense,
        emb, head) depends on, plus ``parts`` (its own settings): an edited config reuses
        every unit whose fingerprint is unchanged."""
        common: dict[str, Any] = {"data": dataclasses.asdict(self.data), "data_override":
                                  data_override, "seed": self.run.seed}
        if self.models.victim_weights:  # other weights: nothing of the victim is reused
            common["victim_weights"] = self.models.victim_weights
        if kind != "minimal":
            ident = dataclasses.asdict(self.identification)
            if not ident["fit_dataset"] and not ident["fit_identities"]:
                del ident["fit_dataset"], ident["fit_identities"]  # older runs keep theirs
            common["identification"] = ident
        if kind in ("attack", "defense", "minimal", "detector", "detection-data", "certify",
                    "physical"):
            common["victim"] = self.models.victim
        if kind in ("attack", "defense", "fusion", "detector", "detection-data"):
            common["batch_size"] = self.run.batch_size
        if kind == "attack":
            common["others"] = sorted(self.models.others)
        if kind in ("attack", "minimal"):  # each shard has its own seed
            common["shard_size"] = self.run.shard_size
        if kind in ("attack", "defense", "minimal", "detection-data") \
                and self.run.precision != "fp32":
            common["precision"] = self.run.precision  # fp32 units keep their fingerprints
        return settings_hash([kind, common, *parts])


def settings_hash(value: Any) -> str:
    """Short sha256 of ``value`` as canonical JSON, tied to the results schema version."""

    blob = json.dumps([SCHEMA_VERSION, value], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _check_keys(table: dict[str, Any], cls: type, where: str) -> None:
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - allowed)
    if unknown:
        allowed_list = ", ".join(sorted(allowed))
        raise ValueError(f"unknown key {where}.{unknown[0]} (allowed: {allowed_list})")


def _build(cls: type, table: Any, where: str) -> Any:
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table, got {type(table).__name__}")
    _check_keys(table, cls, where)
    values: dict[str, Any] = {}
    hints = {f.name: f for f in dataclasses.fields(cls)}
    for name, raw in table.items():
        key = f"{where}.{name}"
        default = hints[name].default
        if name == "epsilons":
            if not isinstance(raw, list) or not raw:
                raise ValueError(f"{key}: must be a non-empty list like [\"1/255\", \"2/255\"]")
            values[name] = tuple(parse_fraction(v, f"{key}[{i}]") for i, v in enumerate(raw))
        elif name == "max_epsilon":
            values[name] = parse_fraction(raw, key)
        elif name in ("goals", "others", "surrogates", "models"):
            if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
                raise ValueError(f"{key}: must be a list of strings")
            values[name] = tuple(raw)
        elif name in OPTIONAL_INTS or name == "shard_size":
            if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
                raise ValueError(f"{key}: must be an integer >= 1, got {raw!r}")
            values[name] = raw
        elif isinstance(default, bool):
            if not isinstance(raw, bool):
                raise ValueError(f"{key}: must be true or false, got {raw!r}")
            values[name] = raw
        elif isinstance(default, int):
            if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
                raise ValueError(f"{key}: must be a non-negative integer, got {raw!r}")
            values[name] = raw
        else:
            if not isinstance(raw, str):
                raise ValueError(f"{key}: must be a string, got {raw!r}")
            values[name] = raw
    try:
        return cls(**values)
    except TypeError as err:
        missing = str(err).split("argument")[-1].strip(": '")
        raise ValueError(f"{where}: missing required key {missing}") from err


def _check_choice(value: str, choices: tuple[str, ...], key: str) -> None:
    if value not in choices:
        raise ValueError(f"{key}: {value!r} is not one of {', '.join(choices)}")


def parse_toml(text: str) -> dict[str, Any]:
    """The TOML parser every config goes through (tomllib; tomli before Python 3.11)."""
    return tomllib.loads(text)


def parse_config(doc: dict[str, Any]) -> AuditConfig:
    """Validate a parsed TOML document into an :class:`AuditConfig`."""
    sections = {"run", "system", "data", "identification", "models", "attack", "minimal",
                "defense", "fusion", "detector", "certify", "physical"}
    unknown = sorted(set(doc) - sections)
    if unknown:
        raise ValueError(f"unknown section [{unknown[0]}] (allowed: {', '.join(sorted(sections))})")
    doc = fold_system(doc)
    attacks_raw = doc.get("attack", [])
    defenses_raw = doc.get("defense", [])
    fusions_raw = doc.get("fusion", [])
    detectors_raw = doc.get("detector", [])
    certify_raw = doc.get("certify", [])
    physical_raw = doc.get("physical", [])
    if not all(isinstance(t, list) for t in (attacks_raw, defenses_raw, fusions_raw,
                                             detectors_raw, certify_raw, physical_raw)):
        raise ValueError("attacks, defenses, fusions, detectors, certify and physical are "
                         "arrays of tables: write [[attack]] / [[defense]] / [[fusion]] / "
                         "[[detector]] / [[certify]] / [[physical]]")
    cfg = AuditConfig(
        run=_build(RunConfig, doc.get("run", {}), "run"),
        data=_build(DataConfig, doc.get("data", {}), "data"),
        identification=_build(IdentificationConfig, doc.get("identification", {}),
                              "identification"),
        models=_build(ModelsConfig, doc.get("models", {}), "models"),
        attacks=tuple(_build(AttackConfig, a, f"attack[{i}]") for i, a in enumerate(attacks_raw)),
        minimal=_build(MinimalConfig, doc.get("minimal", {}), "minimal"),
        defenses=tuple(_build(DefenseConfig, d, f"defense[{i}]")
                       for i, d in enumerate(defenses_raw)),
        fusions=tuple(_build(FusionConfig, f, f"fusion[{i}]") for i, f in enumerate(fusions_raw)),
        detectors=tuple(parse_detector(d, f"detector[{i}]") for i, d in enumerate(detectors_raw)),
        certify=tuple(parse_certify(c, f"certify[{i}]") for i, c in enumerate(certify_raw)),
        physical=tuple(parse_physical(p, f"physical[{i}]") for i, p in enumerate(physical_raw)),
    )
    _validate(cfg)
    return cfg


def fold_system(doc: dict[str, Any]) -> dict[str, Any]:
    """The ``[system]`` table (shared with the gate's config) folded into the audit's keys:
    ``system.model`` is ``models.victim`` and ``system.detector`` is ``data.detector``; a key
    set both ways is an error naming both. The audit judges defenses and detectors as units
    (``[[defense]]``, ``[[detector]]``) and every model at its own operating threshold, so
    ``system.defense``, ``system.detectors`` and ``system.threshold`` are refused here."""
    if "system" not in doc:
        return doc
    raw = doc["system"]
    spec = parse_system(raw)
    for key in ("defense", "detectors", "threshold"):
        if key in raw:
            raise ValueError(f"system.{key} is not used by the audit: judge defenses with "
                             "[[defense]], detectors with [[detector]]; each model is judged "
                             "at its own operating threshold")
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in doc.items() if k != "system"}
    for key, (table, name) in {"model": ("models", "victim"),
                               "detector": ("data", "detector")}.items():
        if key not in raw:
            continue
        section = out.setdefault(table, {})
        if not isinstance(section, dict):
            continue  # reported by the section's own check
        if name in section:
            raise ValueError(f"system.{key} and {table}.{name} are both set: keep system.{key}")
        section[name] = getattr(spec, key)
    return out


def _check_attack(name: str, norm: str, where: str, *, white_box: bool = False) -> None:

    entry = attack_entry(name, norm, where=where)
    if white_box and entry.kind != "white-box":
        raise ValueError(f"{where}: attack {name!r} is {entry.kind}; defenses are judged with "
                         "a white-box attack (BPDA/EOT need gradients)")


def _check_sizes(cfg: AuditConfig) -> None:
    for key, value in (("run.batch_size", cfg.run.batch_size),
                       ("run.shard_size", cfg.run.shard_size),
                       ("data.attack_pairs", cfg.data.attack_pairs),
                       ("identification.probes", cfg.identification.probes),
                       ("minimal.samples", cfg.minimal.samples)):
        if value < 1:
            raise ValueError(f"{key}: must be >= 1, got {value}")
    for key, value, least in (("identification.identities", cfg.identification.identities, 2),
                              ("identification.images_per_identity",
                               cfg.identification.images_per_identity, 2),
                              ("identification.min_images", cfg.identification.min_images, 1)):
        if value < least:
            raise ValueError(f"{key}: must be >= {least}, got {value}")
    for i, d in enumerate(cfg.defenses):
        if d.samples < 1:
            raise ValueError(f"defense[{i}].samples: must be >= 1, got {d.samples}")
    if not 1 <= cfg.data.clean_pairs_per_fold <= 300:
        raise ValueError("data.clean_pairs_per_fold: must be between 1 and 300")


def _check_goal(goal: str, choices: tuple[str, ...], key: str, ident_enabled: bool) -> None:
    _check_choice(goal, choices, key)
    if goal in IDENTIFICATION_GOALS and not ident_enabled:
        raise ValueError(f"{key}: {goal!r} needs [identification] enabled")


def _check_epsilons(values: tuple[float, ...], norm: str, key: str, *,
                    indexed: bool = True) -> None:
    """Budgets a perturbation of [0, 1] chip pixels can have: Linf <= 1, L2 <= ~260."""
    threat = threat_for(norm)
    for i, eps in enumerate(values):
        threat.check_epsilon(eps, f"{key}[{i}]" if indexed else key, CHIP_VALUES)


def _check_fusions(cfg: AuditConfig) -> None:
    known = {cfg.models.victim, *cfg.models.others}
    for i, f in enumerate(cfg.fusions):
        if len(set(f.models)) < 2 or len(set(f.models)) != len(f.models) \
                or any(m not in known for m in f.models):
            raise ValueError(f"fusion[{i}].models: needs >= 2 different models among the "
                             f"victim and models.others ({', '.join(sorted(known))}); got "
                             f"{list(f.models)}")
        _check_choice(f.norm, NORMS, f"fusion[{i}].norm")
        _check_attack(f.attack, f.norm, f"fusion[{i}]", white_box=True)
        _check_epsilons(f.epsilons, f.norm, f"fusion[{i}].epsilons")
        _check_choice(f.goal, VERIFICATION_GOALS, f"fusion[{i}].goal")
        if f.samples < 1:
            raise ValueError(f"fusion[{i}].samples: must be >= 1, got {f.samples}")


def _check_data(data: DataConfig) -> None:

    _check_choice(data.layout, LAYOUTS, "data.layout")
    _check_choice(data.detector, DETECTORS, "data.detector")
    name = data.dataset
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"data.dataset: {name!r} is not a dataset name; give a plain name like "
                         "'lfw-gray' or set data.root to the folder")


def _check_fit(cfg: AuditConfig) -> None:
    """``identification.fit_dataset`` / ``fit_identities``: both or neither, on a plain
    dataset name other than ``data.dataset``, without a saved head."""
    ident = cfg.identification
    if not ident.fit_dataset and not ident.fit_identities:
        return
    if not ident.fit_dataset or ident.fit_identities < 2:
        raise ValueError("identification.fit_identities: needs identification.fit_dataset and "
                         ">= 2 identities (the people the detectors are fitted on), got "
                         f"fit_dataset={ident.fit_dataset!r}, "
                         f"fit_identities={ident.fit_identities}")
    name = ident.fit_dataset
    if "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"identification.fit_dataset: {name!r} is not a dataset name; give a "
                         "plain name like 'cfp'")
    if name == cfg.data.dataset and not cfg.data.root:
        raise ValueError(f"identification.fit_dataset: {name!r} is data.dataset itself; the "
                         "detectors must be fitted on other people than they are judged on")
    if not ident.enabled or ident.head:
        raise ValueError("identification.fit_dataset: needs [identification] enabled and no "
                         "saved head (the split joins both datasets' people)")
    if not cfg.detectors:
        raise ValueError("identification.fit_dataset: only detectors use it; add a [[detector]]")


def _validate(cfg: AuditConfig) -> None:
    _check_choice(cfg.run.executor, EXECUTORS, "run.executor")
    check_precision(cfg.run.precision, "run.precision")
    _check_sizes(cfg)
    _check_data(cfg.data)
    ident = cfg.identification
    if ident.enabled and not ident.head and \
            not 1 <= ident.gallery_per_identity < ident.images_per_identity:
        raise ValueError("identification.gallery_per_identity: must be >= 1 and smaller than "
                         "identification.images_per_identity")
    keys = set()
    for i, atk in enumerate(cfg.attacks):
        _check_choice(atk.norm, NORMS, f"attack[{i}].norm")
        _check_attack(atk.name, atk.norm, f"attack[{i}]")
        _check_epsilons(atk.epsilons, atk.norm, f"attack[{i}].epsilons")
        if not atk.goals:
            raise ValueError(f"attack[{i}].goals: must name at least one goal")
        for goal in atk.goals:
            _check_goal(goal, GOALS, f"attack[{i}].goals", ident.enabled)
        if atk.surrogates:
            known = {cfg.models.victim, *cfg.models.others}
            unknown = [m for m in atk.surrogates if m not in known]
            single_victim = list(atk.surrogates) == [cfg.models.victim]
            if unknown or single_victim or len(set(atk.surrogates)) != len(atk.surrogates):
                raise ValueError(f"attack[{i}].surrogates: needs one model other than the "
                                 "victim, or >= 2 different models, among the victim and "
                                 f"models.others ({', '.join(sorted(known))}); "
                                 f"got {list(atk.surrogates)}")
        if atk.all_sources and (atk.surrogates or not cfg.models.others):
            raise ValueError(f"attack[{i}].all_sources: needs models.others and no surrogates")
        if atk.key in keys:
            raise ValueError(f"attack[{i}]: {atk.name}/{atk.norm} appears twice")
        keys.add(atk.key)
    m = cfg.minimal
    _check_choice(m.norm, NORMS, "minimal.norm")
    _check_attack(m.attack, m.norm, "minimal")
    _check_epsilons((m.max_epsilon,), m.norm, "minimal.max_epsilon", indexed=False)
    if m.max_epsilon <= 0:
        raise ValueError("minimal.max_epsilon: must be > 0")
    _check_choice(m.goal, VERIFICATION_GOALS, "minimal.goal")
    _check_fusions(cfg)
    _check_fit(cfg)
    if cfg.detectors and not ident.enabled:
        raise ValueError("detector[0]: detectors are studied on the identification task; "
                         "enable [identification]")
    for i, c in enumerate(cfg.certify):
        if c.goal == "identification" and not ident.enabled:
            raise ValueError(f"certify[{i}].goal: 'identification' needs [identification] "
                             "enabled")
    for i, d in enumerate(cfg.defenses):

        try:
            parse_defense(d.spec)
        except (ValueError, TypeError) as err:
            raise ValueError(f"defense[{i}].spec: {err}") from err
        _check_choice(d.norm, NORMS, f"defense[{i}].norm")
        _check_attack(d.attack, d.norm, f"defense[{i}]", white_box=True)
        _check_epsilons(d.epsilons, d.norm, f"defense[{i}].epsilons")
        _check_goal(d.goal, GOALS, f"defense[{i}].goal", ident.enabled)
        if d.blackbox_queries < 0:
            raise ValueError(f"defense[{i}].blackbox_queries: must be >= 0")


def load_config(path: str | Path) -> AuditConfig:
    """Read and validate a TOML audit config; errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}") from err
    try:
        return parse_config(doc)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


def with_head(cfg: AuditConfig, head: str) -> AuditConfig:
    """``cfg`` with identification enabled over the identities of a saved head."""
    ident = dataclasses.replace(cfg.identification, enabled=True, head=head)
    new = dataclasses.replace(cfg, identification=ident)
    _validate(new)
    return new
