"""``[[physical]]`` tables of the audit config: a printable accessory against the victim's
face system, judged on held-out simulated captures (:mod:`facerobust.eval.physical_study`).

>>> parse_physical({"accessory": "mask", "goal": "dodging"}, "physical[0]").steps
60
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from facerobust.attacks.accessory import ACCESSORIES
from facerobust.eval.config_values import check_table
from facerobust.system.physical import GOALS


@dataclass(frozen=True)
class PhysicalConfig:
    """One accessory and goal: universal or per photo, the optimisation budget, how many
    attackers and photos, held-out captures per photo, the minimum printed feature."""

    accessory: str = "eyeglasses"
    goal: str = "dodging"
    universal: bool = True
    steps: int = 60
    eot_samples: int = 4
    attackers: int = 2
    photos: int = 5
    heldout: int = 6
    min_feature_mm: float = 3.0
    detectors: tuple[str, ...] = ()  # detector files (`facerobust detect --save`) on the system
    adaptive: float = 0.0  # > 0: the accessory also evades ``detectors`` with this weight


CHOICES = {"accessory": ACCESSORIES, "goal": GOALS}


def _detector_files(raw: Any, name: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(f, str) for f in raw):
        raise ValueError(f"{name}: must be a list of detector files, got {raw!r}")
    for f in raw:
        if not f.endswith(".pt") or not Path(f).expanduser().is_file():
            raise ValueError(f"{name}: {f!r} is not a detector file (*.pt saved by "
                             "`facerobust detect --save`)")
    return tuple(str(Path(f).expanduser()) for f in raw)


def _value(key: str, raw: Any, default: Any, name: str) -> Any:
    if key == "detectors":
        return _detector_files(raw, name)
    if key == "adaptive":
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < 0:
            raise ValueError(f"{name}: must be a number >= 0, got {raw!r}")
        return float(raw)
    if key in CHOICES:
        if raw not in CHOICES[key]:
            raise ValueError(f"{name}: {raw!r} is not one of {', '.join(CHOICES[key])}")
        return raw
    if isinstance(default, bool):
        if not isinstance(raw, bool):
            raise ValueError(f"{name}: must be true or false, got {raw!r}")
        return raw
    if isinstance(default, float):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not raw > 0:
            raise ValueError(f"{name}: must be a number > 0, got {raw!r}")
        return float(raw)
    least = 3 if key == "photos" else 1
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < least:
        raise ValueError(f"{name}: must be an integer >= {least}, got {raw!r}")
    return raw


def parse_physical(table: Any, where: str) -> PhysicalConfig:
    """Validate one ``[[physical]]`` table; every error names ``where.key``."""
    defaults = {f.name: f.default for f in fields(PhysicalConfig)}
    check_table(table, set(defaults), where)
    cfg = PhysicalConfig(**{k: _value(k, v, defaults[k], f"{where}.{k}")
                            for k, v in table.items()})
    if cfg.adaptive > 0 and not cfg.detectors:
        raise ValueError(f"{where}.adaptive: needs {where}.detectors (the detectors to evade)")
    return cfg


__all__ = ["PhysicalConfig", "parse_physical"]
