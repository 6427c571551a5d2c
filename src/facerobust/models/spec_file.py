"""Your own face model described by a TOML spec file, parsed into typed sections.

A spec names the network file (``format`` onnx | torchscript | python), how the canonical chip
becomes the network's input (``[input]``: template, size, colour order, scale/mean/std) and
how descriptors are compared (``[output]``: metric, threshold, optional embedding size), or
where the threshold is calibrated (``[calibration]``). Every check that needs no network run
happens here, so a bad spec fails before any work with a ``ValueError`` naming the file and key.

>>> spec = read_model_spec("my-arcface.toml")      # doctest: +SKIP
>>> spec.input.template, spec.output.metric        # doctest: +SKIP
('arcface-112', 'cosine')
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from facerobust.core.toml_file import read_toml

FORMATS = ("onnx", "torchscript", "python")
TEMPLATES = {"dlib-chip": None, "arcface-112": 112, "facenet-160": 160, "custom": None}
COLOURS = ("rgb", "bgr")
LAYOUTS = ("nchw", "nhwc")
METRICS = ("cosine", "euclidean")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class ModelSection:
    """``[model]``: what the network is and where it lives."""

    name: str
    format: str
    file: str = ""
    sha256: str = ""
    entry: str = ""  # "package.module:factory" for format = "python"


@dataclass(frozen=True)
class InputSection:
    """``[input]``: canonical chip -> network input (warp, colour order, normalisation)."""

    size: int = 150
    template: str = "dlib-chip"
    colour: str = "rgb"
    scale: float = 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    layout: str = "nchw"
    landmarks: tuple[tuple[float, float], ...] = ()  # template = "custom": 5 points, pixels


@dataclass(frozen=True)
class OutputSection:
    """``[output]``: how two descriptors are compared (``threshold`` 0 = calibrated)."""

    metric: str = "cosine"
    threshold: float = 0.0
    size: int = 0  # expected embedding size, 0 = whatever the network returns


@dataclass(frozen=True)
class CalibrationSection:
    """``[calibration]``: the threshold at ``far`` measured on the dataset at ``data``."""

    far: float = 1e-3
    data: str = ""


@dataclass(frozen=True)
class ModelFileSpec:
    """A parsed, validated spec; ``path`` is the TOML file (relative files resolve beside it)."""

    path: Path
    model: ModelSection
    input: InputSection
    output: OutputSection
    calibration: CalibrationSection | None = None

    @property
    def name(self) -> str:
        return self.model.name

    def file_path(self) -> Path | None:
        """The network file, absolute (``None`` for a python entry without a file)."""
        if not self.model.file:
            return None
        path = Path(self.model.file).expanduser()
        return path if path.is_absolute() else (self.path.parent / path).resolve()

    def card_path(self) -> Path:
        """Where ``facerobust models calibrate`` writes this model's card."""
        return self.path.with_name(f"{self.path.stem}.card.json")


def is_spec_path(name: str) -> bool:
    """Whether a model name is a spec file path (``*.toml``)."""
    return str(name).endswith(".toml")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_model_spec(path: str | Path, *, check_files: bool = True) -> ModelFileSpec:
    """Read and validate a spec file (``ValueError`` naming the file and the key)."""
    path = Path(path).expanduser().resolve()
    doc = read_toml(path, "model spec")
    try:
        return parse_model_spec(doc, path, check_files=check_files)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def parse_model_spec(doc: dict[str, Any], path: Path, *,
                     check_files: bool = True) -> ModelFileSpec:
    """Validate a parsed spec document; ``path`` anchors relative file names."""
    tables = {"model", "input", "output", "calibration"}
    unknown = sorted(set(doc) - tables)
    if unknown:
        raise ValueError(f"unknown table [{unknown[0]}]; allowed: "
                         "[model], [input], [output], [calibration]")
    if "model" not in doc:
        raise ValueError("missing table [model] (name, format, file)")
    spec = ModelFileSpec(
        path=path, model=_section(ModelSection, "model", doc["model"]),
        input=_section(InputSection, "input", doc.get("input", {})),
        output=_section(OutputSection, "output", doc.get("output", {})),
        calibration=(_section(CalibrationSection, "calibration", doc["calibration"])
                     if "calibration" in doc else None))
    _check_model(spec, check_files)
    _check_input(spec.input)
    _check_output(spec)
    return spec


def _section(cls: type[Any], table: str, data: Any) -> Any:
    """Build dataclass ``cls`` from TOML table ``data``: unknown keys and wrong types name
    ``table.key``."""
    if not isinstance(data, dict):
        raise ValueError(f"[{table}] must be a table, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown key {table}.{unknown[0]}; allowed: {', '.join(known)}")
    missing = [k for k, f in known.items() if k not in data and f.default is MISSING]
    if missing:
        raise ValueError(f"missing key {table}.{missing[0]}")
    return cls(**{key: _coerce(f"{table}.{key}", value, known[key].default)
                  for key, value in data.items()})


def _coerce(key: str, value: Any, default: Any) -> Any:
    """``value`` checked against the type of the field's default (str, int, float, tuples)."""
    if isinstance(default, bool) or isinstance(value, bool):
        raise ValueError(f"{key} must not be a boolean, got {value!r}")
    if isinstance(default, float):
        if not isinstance(value, (int, float)):
            raise ValueError(f"{key} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, int):
        if not isinstance(value, int):
            raise ValueError(f"{key} must be an integer, got {value!r}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list):
            raise ValueError(f"{key} must be a list, got {value!r}")
        return tuple(tuple(_number_list(key, v)) if isinstance(v, list) else _number(key, v)
                     for v in value)
    if not isinstance(value, str):  # str fields, including required ones (no default)
        raise ValueError(f"{key} must be a string, got {value!r}")
    return value


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key} must hold numbers, got {value!r}")
    return float(value)


def _number_list(key: str, values: list[Any]) -> list[float]:
    return [_number(key, v) for v in values]


def _check_model(spec: ModelFileSpec, check_files: bool) -> None:
    m = spec.model
    if not NAME.match(m.name):
        raise ValueError(f"model.name must be a plain name (letters, digits, . _ -), got "
                         f"{m.name!r}")
    if m.format not in FORMATS:
        raise ValueError(f"model.format must be one of {', '.join(FORMATS)}, got {m.format!r}")
    if m.format == "python":
        module, _, attr = m.entry.partition(":")
        if not module or not attr:
            raise ValueError(f"model.entry must be 'package.module:factory' for format "
                             f"'python', got {m.entry!r}")
    elif m.entry:
        raise ValueError(f"model.entry is only for format 'python' (format is {m.format!r})")
    elif not m.file:
        raise ValueError(f"model.file is required for format {m.format!r}")
    if m.sha256 and not re.fullmatch(r"[0-9a-fA-F]{64}", m.sha256):
        raise ValueError(f"model.sha256 must be 64 hex digits, got {m.sha256!r}")
    if m.sha256 and not m.file:
        raise ValueError("model.sha256 pins model.file, which is not set")
    path = spec.file_path()
    if not check_files or path is None:
        return
    if not path.is_file():
        raise ValueError(f"model.file {path} does not exist")
    if m.sha256 and sha256_of(path) != m.sha256.lower():
        raise ValueError(f"model.file {path}: sha256 {sha256_of(path)} differs from the pinned "
                         f"model.sha256 {m.sha256.lower()}")


def _check_input(inp: InputSection) -> None:
    if inp.template not in TEMPLATES:
        raise ValueError(f"input.template must be one of {', '.join(TEMPLATES)}, got "
                         f"{inp.template!r}")
    fixed = TEMPLATES[inp.template]
    if not 16 <= inp.size <= 1024:
        raise ValueError(f"input.size must be in 16..1024, got {inp.size}")
    if fixed is not None and inp.size != fixed:
        raise ValueError(f"input.size {inp.size} does not fit input.template {inp.template!r} "
                         f"({fixed}x{fixed}); use template 'custom' with input.landmarks")
    if inp.template == "custom":
        if len(inp.landmarks) != 5 or any(len(p) != 2 for p in inp.landmarks):
            raise ValueError("input.landmarks must be 5 [x, y] points (eyes, nose tip, mouth "
                             "corners, in network-input pixels) for template 'custom'")
    elif inp.landmarks:
        raise ValueError("input.landmarks is only for template 'custom'")
    if inp.colour not in COLOURS:
        raise ValueError(f"input.colour must be one of {', '.join(COLOURS)}, got {inp.colour!r}")
    if inp.layout not in LAYOUTS:
        raise ValueError(f"input.layout must be one of {', '.join(LAYOUTS)}, got {inp.layout!r}")
    if inp.scale <= 0:
        raise ValueError(f"input.scale must be > 0, got {inp.scale}")
    for key in ("mean", "std"):
        vals = getattr(inp, key)
        if len(vals) != 3 or any(isinstance(v, tuple) for v in vals):
            raise ValueError(f"input.{key} must be 3 numbers (one per channel), got {list(vals)}")
    if any(s <= 0 for s in inp.std):
        raise ValueError(f"input.std must be > 0, got {list(inp.std)}")


def _check_output(spec: ModelFileSpec) -> None:
    out, cal = spec.output, spec.calibration
    if out.metric not in METRICS:
        raise ValueError(f"output.metric must be one of {', '.join(METRICS)}, got "
                         f"{out.metric!r}")
    if out.threshold < 0:
        raise ValueError(f"output.threshold must be >= 0, got {out.threshold}")
    if out.size < 0:
        raise ValueError(f"output.size must be >= 0 (0 = any), got {out.size}")
    if cal is not None and not 0 < cal.far < 1:
        raise ValueError(f"calibration.far must be in (0, 1), got {cal.far}")
