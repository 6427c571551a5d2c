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

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

VERIFICATION_GOALS = ("dodging", "impersonation")
IDENTIFICATION_GOALS = ("untargeted", "targeted")
ATTACKS = ("fgsm", "bim", "pgd", "mifgsm", "cw", "deepfool", "square", "hsj")
NORMS = ("linf", "l2")


@dataclass(frozen=True)
class RunConfig:
    name: str = "facerobust audit"
    seed: int = 0
    batch_size: int = 16


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "lfw-gray"
    root: str = ""
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


@dataclass(frozen=True)
class ModelsConfig:
    victim: str = "dlib-resnet"
    others: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttackConfig:
    name: str
    epsilons: tuple[float, ...]
    norm: str = "linf"
    steps: int = 10
    goals: tuple[str, ...] = ("dodging", "impersonation")
    queries: int = 1000

    @property
    def key(self) -> str:
        return f"{self.name}-{self.norm}"


@dataclass(frozen=True)
class MinimalConfig:
    enabled: bool = False
    attack: str = "pgd"
    norm: str = "linf"
    steps: int = 10
    goal: str = "dodging"
    samples: int = 16
    max_epsilon: float = 16 / 255


@dataclass(frozen=True)
class DefenseConfig:
    spec: str
    attack: str = "pgd"
    norm: str = "linf"
    epsilons: tuple[float, ...] = (2 / 255, 4 / 255, 8 / 255)
    steps: int = 10
    goal: str = "dodging"
    eot: int = 4
    samples: int = 16


@dataclass(frozen=True)
class AuditConfig:
    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    identification: IdentificationConfig = field(default_factory=IdentificationConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    attacks: tuple[AttackConfig, ...] = ()
    minimal: MinimalConfig = field(default_factory=MinimalConfig)
    defenses: tuple[DefenseConfig, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Stable hash of the whole configuration (used to refuse resuming a different run)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def parse_fraction(value: Any, key: str) -> float:
    """``"2/255"``, ``0.01`` or ``"0.01"`` -> finite float >= 0 (errors name ``key``)."""
    from facerobust.attacks.epsilons import parse_epsilon

    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{key}: cannot read {value!r} as a number or fraction")
    try:
        number = parse_epsilon(str(value))
    except ValueError as err:
        raise ValueError(f"{key}: cannot read {value!r} as a number or fraction ({err})") from err
    if number == float("inf"):
        raise ValueError(f"{key}: must be finite, got {value!r}")
    return number


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
        elif name in ("goals", "others"):
            if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
                raise ValueError(f"{key}: must be a list of strings")
            values[name] = tuple(raw)
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


def parse_config(doc: dict[str, Any]) -> AuditConfig:
    """Validate a parsed TOML document into an :class:`AuditConfig`."""
    sections = {"run", "data", "identification", "models", "attack", "minimal", "defense"}
    unknown = sorted(set(doc) - sections)
    if unknown:
        raise ValueError(f"unknown section [{unknown[0]}] (allowed: {', '.join(sorted(sections))})")
    attacks_raw = doc.get("attack", [])
    defenses_raw = doc.get("defense", [])
    if not isinstance(attacks_raw, list) or not isinstance(defenses_raw, list):
        raise ValueError("attacks and defenses are arrays of tables: "
                         "write [[attack]] / [[defense]]")
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
    )
    _validate(cfg)
    return cfg


def _validate(cfg: AuditConfig) -> None:
    if cfg.run.batch_size < 1:
        raise ValueError("run.batch_size: must be >= 1")
    if not 1 <= cfg.data.clean_pairs_per_fold <= 300:
        raise ValueError("data.clean_pairs_per_fold: must be between 1 and 300")
    ident = cfg.identification
    if ident.enabled and not 1 <= ident.gallery_per_identity < ident.images_per_identity:
        raise ValueError("identification.gallery_per_identity: must be >= 1 and smaller than "
                         "identification.images_per_identity")
    keys = set()
    for i, atk in enumerate(cfg.attacks):
        _check_choice(atk.name, ATTACKS, f"attack[{i}].name")
        _check_choice(atk.norm, NORMS, f"attack[{i}].norm")
        for goal in atk.goals:
            _check_choice(goal, VERIFICATION_GOALS + IDENTIFICATION_GOALS, f"attack[{i}].goals")
            if goal in IDENTIFICATION_GOALS and not ident.enabled:
                raise ValueError(f"attack[{i}].goals: {goal!r} needs [identification] enabled")
        if atk.key in keys:
            raise ValueError(f"attack[{i}]: {atk.name}/{atk.norm} appears twice")
        keys.add(atk.key)
    m = cfg.minimal
    _check_choice(m.attack, ATTACKS, "minimal.attack")
    _check_choice(m.norm, NORMS, "minimal.norm")
    _check_choice(m.goal, VERIFICATION_GOALS, "minimal.goal")
    for i, d in enumerate(cfg.defenses):
        from facerobust.defenses import parse_defense

        try:
            parse_defense(d.spec)
        except (ValueError, TypeError) as err:
            raise ValueError(f"defense[{i}].spec: {err}") from err
        _check_choice(d.attack, ATTACKS, f"defense[{i}].attack")
        _check_choice(d.norm, NORMS, f"defense[{i}].norm")
        _check_choice(d.goal, VERIFICATION_GOALS, f"defense[{i}].goal")


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
