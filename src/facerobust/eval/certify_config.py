"""``[[certify]]`` tables of the audit config: randomized-smoothing certificates of the
victim's decisions (:mod:`facerobust.system.certify`) at one or more noise levels.

>>> parse_certify({"sigma": [0.25, 0.5], "n": 500}, "certify[0]").sigmas
(0.25, 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from facerobust.eval.config_values import check_table

CERTIFY_GOALS = ("verification", "identification")
DEFAULT_RADII = (0.0, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class CertifyConfig:
    """Noise levels, Monte Carlo budgets (``n0`` selection, ``n`` estimation draws), the
    error level, the task, probes per class (verification: ``samples`` genuine and
    ``samples`` impostor pairs), the radii of the rate table, and the adaptive attack's
    steps and EOT draws (0 steps: no attack)."""

    sigma: tuple[float, ...] = (0.12, 0.25, 0.5)
    n0: int = 100
    n: int = 1000
    alpha: float = 0.001
    goal: str = "verification"
    samples: int = 20
    radii: tuple[float, ...] = DEFAULT_RADII
    attack_steps: int = 20
    attack_eot: int = 16
    batch: int = 100

    @property
    def sigmas(self) -> tuple[float, ...]:
        return self.sigma


def _number(raw: Any, key: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ValueError(f"{key}: must be a number, got {raw!r}")
    return float(raw)


def _numbers(raw: Any, key: str) -> tuple[float, ...]:
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise ValueError(f"{key}: must be a number or a non-empty list of numbers")
    return tuple(_number(v, f"{key}[{i}]" if isinstance(raw, list) else key)
                 for i, v in enumerate(values))


def _int(raw: Any, key: str, least: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < least:
        raise ValueError(f"{key}: must be an integer >= {least}, got {raw!r}")
    return raw


def parse_certify(table: Any, where: str) -> CertifyConfig:
    """Validate one ``[[certify]]`` table; every error names ``where.key``."""
    check_table(table, {f.name for f in fields(CertifyConfig)}, where)
    values: dict[str, Any] = {}
    for key, raw in table.items():
        name = f"{where}.{key}"
        if key in ("sigma", "radii"):
            values[key] = _numbers(raw, name)
        elif key == "alpha":
            values[key] = _number(raw, name)
        elif key == "goal":
            if raw not in CERTIFY_GOALS:
                raise ValueError(f"{name}: {raw!r} is not one of {', '.join(CERTIFY_GOALS)}")
            values[key] = raw
        else:
            values[key] = _int(raw, name, 0 if key == "attack_steps" else 1)
    cfg = CertifyConfig(**values)
    if any(not s > 0 for s in cfg.sigma) or len(set(cfg.sigma)) != len(cfg.sigma):
        raise ValueError(f"{where}.sigma: noise levels must be > 0 and different, "
                         f"got {list(cfg.sigma)}")
    if any(r < 0 for r in cfg.radii):
        raise ValueError(f"{where}.radii: radii must be >= 0, got {list(cfg.radii)}")
    if not 0 < cfg.alpha < 1:
        raise ValueError(f"{where}.alpha: must be in (0, 1), got {cfg.alpha!r}")
    return cfg
