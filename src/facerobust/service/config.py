"""Gate configuration: a TOML file validated into typed dataclasses.

Unknown keys and bad values raise ``ValueError`` naming the key (``limits.key_rate``). The
admin key and the database URL may come from the environment instead of the file
(``FACEROBUST_GATE_ADMIN_KEY``, ``FACEROBUST_GATE_DB``), so no secret has to live in it.

>>> cfg = load_gate_config("examples/gate.toml")      # doctest: +SKIP
>>> cfg.gate.model, cfg.limits.max_rejections          # doctest: +SKIP
('dlib-resnet', 20)
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facerobust.core.toml_file import read_toml
from facerobust.defenses import parse_defense
from facerobust.system.spec import SYSTEM_KEYS, SystemSpec, parse_system

ADMIN_KEY_ENV = "FACEROBUST_GATE_ADMIN_KEY"
DB_ENV = "FACEROBUST_GATE_DB"
DEFAULT_DB = "sqlite:///gate.db"
MIN_KEY_BITS = 128
IDENTIFY_MODES = ("on", "off", "admin")
MULTI_FACE = ("reject", "largest")
IMAGE_TYPES = {"image/jpeg": "jpeg", "image/png": "png", "image/webp": "webp",
               "image/bmp": "bmp", "image/gif": "gif", "image/tiff": "tiff"}
KEY_ALPHABETS = ("0123456789abcdef", "abcdefghijklmnopqrstuvwxyz234567",
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class GateSection:
    model: str = "dlib-resnet"  # a registered model name, or "package.module:factory"
    defense: str = "none"  # a defense spec (facerobust.defenses.parse_defense)
    detector: str = "hog"  # face detector of facerobust.data.chips: hog | hog+cnn | cnn
    threshold: float = 0.0  # 0 = the model card's measured threshold (FAR=1e-3), else model's
    expose_scores: bool = False  # /verify returns the distance only when true
    database: str = ""  # SQLAlchemy URL; "" = $FACEROBUST_GATE_DB, then sqlite:///gate.db
    admin_key: str = ""  # "" = $FACEROBUST_GATE_ADMIN_KEY (required one way or the other)
    torch_threads: int = 1
    # adversarial-input detectors: files saved by `facerobust detect --save` (*.pt, fitted on
    # this model), or "package.module:factory" paths whose factory() returns a callable
    # chips (N, 3, 150, 150) -> {flag: value}; a true "reject" flag rejects the probe
    detectors: tuple[str, ...] = ()  # "gallery": fitted on this gate's own gallery
    gallery_fpr: float = 0.05  # false alarms of the "gallery" detector on enrolled templates
    docs: bool = False  # serve /docs and /openapi.json (without a key) only when true
    trusted_proxies: tuple[str, ...] = ()  # peers whose X-Forwarded-For names the client


@dataclass(frozen=True)
class LimitsSection:
    max_bytes: int = 5_000_000  # largest accepted upload, per file and per request body / 4
    max_pixels: int = 25_000_000  # refused before decoding (decompression bombs)
    content_types: tuple[str, ...] = ("image/jpeg", "image/png")
    max_photos: int = 10  # photos per enrollment
    key_rate: float = 0.0  # requests/s per API key (token bucket); 0 = unlimited
    key_burst: int = 20
    identity_rate: float = 0.0  # verify requests/s per claimed identity; 0 = unlimited
    identity_burst: int = 10
    max_rejections: int = 0  # lock a key / claimed identity out after this many rejections
    lockout_window_s: float = 3600.0  # ... counted over this window; 0 rejections = off
    pair_rejections: int = 0  # per (key, identity) lock-out; 0 = max_rejections
    identity_delay_s: float = 1.0  # per identity, from max_rejections failures on: this delay,
    identity_max_delay_s: float = 60.0  # doubling per further failure, at most this long
    auth_fail_rate: float = 0.5  # failed authentications/s per client address (token
    auth_fail_burst: int = 20  # bucket): beyond the burst, 429 before any key is checked
    identify: str = "on"  # /identify: "on" (any key, same budget), "off", "admin" (admin key)
    multi_face: str = "reject"  # a probe with another sizeable face: "reject" (422), "largest"
    multi_face_ratio: float = 0.5  # "sizeable": at least this share of the largest face's area


@dataclass(frozen=True)
class GateConfig:
    gate: GateSection = field(default_factory=GateSection)
    limits: LimitsSection = field(default_factory=LimitsSection)

    @property
    def system(self) -> SystemSpec:
        """The face system this gate runs (the ``[system]`` keys, shared with the audit)."""
        g = self.gate
        return SystemSpec(model=g.model, defense=g.defense, detector=g.detector,
                          threshold=g.threshold, detectors=g.detectors)

    @property
    def database_url(self) -> str:
        return self.gate.database or os.environ.get(DB_ENV, "") or DEFAULT_DB

    @property
    def admin_key(self) -> str:
        """The configured admin key ("" when none is: the server then generates one);
        ValueError when it carries fewer than :data:`MIN_KEY_BITS` bits."""
        key = self.gate.admin_key or os.environ.get(ADMIN_KEY_ENV, "")
        if key and key_bits(key) < MIN_KEY_BITS:
            raise ValueError(f"gate.admin_key (or ${ADMIN_KEY_ENV}) carries at most "
                             f"{key_bits(key):.0f} bits; it needs {MIN_KEY_BITS} (e.g. python -c "
                             "'import secrets; print(secrets.token_urlsafe(32))'), or leave it "
                             "unset to have one generated and shown once")
        return key

    @property
    def image_formats(self) -> tuple[str, ...]:
        """The image formats ``limits.content_types`` allow (decoders limited to them)."""
        return tuple(IMAGE_TYPES[t] for t in self.limits.content_types)


def key_bits(key: str) -> float:
    """An upper bound of the bits a key carries: its length times the bits per character of
    the smallest usual alphabet holding it (hex, base32, base64url, printable ASCII); 0 when
    it repeats itself (too few distinct characters for its length and alphabet)."""
    size = next((len(a) for a in KEY_ALPHABETS if set(key) <= set(a)), 95)
    if len(set(key)) < min(size / 2, max(8, len(key) / 3)):
        return 0.0
    return len(key) * math.log2(size)


def _coerce(where: str, default: Any, value: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{where} must be an integer >= 0, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{where} must be a number >= 0, got {value!r}")
        return float(value)
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{where} must be a list of strings, got {value!r}")
        return tuple(value)
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string, got {value!r}")
    return value


def _section(cls: type, name: str, data: Any) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"[{name}] must be a table, got {type(data).__name__}")
    defaults = cls()
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"unknown key {name}.{unknown[0]}; allowed: {', '.join(sorted(fields))}")
    values = {k: _coerce(f"{name}.{k}", getattr(defaults, k), v) for k, v in data.items()}
    return cls(**values)


def _merge_system(data: dict[str, Any]) -> dict[str, Any]:
    """The ``[gate]`` table with the ``[system]`` keys folded in; a key given in both is an
    error naming both spellings."""
    gate = data.get("gate", {})
    if "system" not in data:
        return gate if isinstance(gate, dict) else {}
    spec = parse_system(data["system"])
    both = sorted(set(gate) & set(data["system"])) if isinstance(gate, dict) else []
    if both:
        raise ValueError(f"system.{both[0]} and gate.{both[0]} are both set: keep system.{both[0]}")
    values = {k: getattr(spec, k) for k in SYSTEM_KEYS if k in data["system"]}
    if "detectors" in values:
        values["detectors"] = list(values["detectors"])
    return {**gate, **values}


def parse_gate_config(data: dict[str, Any]) -> GateConfig:
    """Validate a parsed TOML document (``[system]``, ``[gate]`` and ``[limits]`` tables; the
    system keys may also stay in ``[gate]``, as before)."""
    unknown = sorted(set(data) - {"system", "gate", "limits"})
    if unknown:
        raise ValueError(f"unknown table [{unknown[0]}]; allowed: [system], [gate], [limits]")
    if not isinstance(data.get("gate", {}), dict):
        raise ValueError(f"[gate] must be a table, got {type(data['gate']).__name__}")
    cfg = GateConfig(gate=_section(GateSection, "gate", _merge_system(data)),
                     limits=_section(LimitsSection, "limits", data.get("limits", {})))
    _check(cfg)
    return cfg


def _check(cfg: GateConfig) -> None:

    _ = cfg.system  # validates the model name, detector chain and threshold
    try:
        parse_defense(cfg.gate.defense)
    except ValueError as err:
        raise ValueError(f"gate.defense: {err}") from None
    if not 0 < cfg.gate.gallery_fpr < 1:
        raise ValueError(f"gate.gallery_fpr must lie strictly between 0 and 1, got "
                         f"{cfg.gate.gallery_fpr}")
    for spec in cfg.gate.detectors:
        if spec == "gallery":
            continue
        if spec.endswith(".pt"):
            if not Path(spec).is_file():
                raise ValueError(f"gate.detectors: {spec!r}: no such detector file")
        elif ":" not in spec:
            raise ValueError(f"gate.detectors: {spec!r} is neither \"gallery\", a detector "
                             "file (*.pt) nor a 'package.module:factory' path")
    if cfg.gate.torch_threads < 1:
        raise ValueError("gate.torch_threads must be >= 1")
    lim = cfg.limits
    for key in ("max_bytes", "max_pixels", "max_photos", "key_burst", "identity_burst"):
        if getattr(lim, key) < 1:
            raise ValueError(f"limits.{key} must be >= 1, got {getattr(lim, key)}")
    if lim.identity_max_delay_s < lim.identity_delay_s:
        raise ValueError("limits.identity_max_delay_s must be >= limits.identity_delay_s")
    if lim.identify not in IDENTIFY_MODES:
        raise ValueError(f"limits.identify must be one of {', '.join(IDENTIFY_MODES)}, "
                         f"got {lim.identify!r}")
    if not lim.content_types:
        raise ValueError("limits.content_types is empty: allow at least one image type")
    unknown = [t for t in lim.content_types if t not in IMAGE_TYPES]
    if unknown:
        raise ValueError(f"limits.content_types: {unknown[0]!r} is not an image type the gate "
                         f"can check by content; use {', '.join(IMAGE_TYPES)}")
    if lim.multi_face not in MULTI_FACE:
        raise ValueError(f"limits.multi_face must be one of {', '.join(MULTI_FACE)}, "
                         f"got {lim.multi_face!r}")
    if not 0 < lim.multi_face_ratio <= 1:
        raise ValueError(f"limits.multi_face_ratio must be in (0, 1], got {lim.multi_face_ratio}")


def load_gate_config(path: str | Path) -> GateConfig:
    """Read and validate a gate TOML file (ValueError naming the file and the key)."""
    path = Path(path)
    data = read_toml(path, "gate config")
    try:
        return parse_gate_config(data)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
