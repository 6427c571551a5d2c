"""``[[detector]]`` tables of the audit config: one adversarial-input detector each, the attacks
that make its training and test adversarials, and its adaptive attack.

>>> parse_detector({"name": "squeeze", "options": {"bits": 5}}, "detector[0]")   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from facerobust.detectors.registry import DETECTORS, detector_options
from facerobust.eval.config_values import check_table, parse_fraction

DETECTION_ATTACKS = ("bim", "cw", "mifgsm")
TRAJECTORY_VARIANTS = ("C-l2", "C-cosine", "M-l2", "M-cosine")


@dataclass(frozen=True)
class DetectorConfig:
    name: str  # trajectory | squeeze | ocsvm | iforest | gallery
    options: dict[str, Any] = field(default_factory=dict)  # the detector's own options
    variants: tuple[str, ...] = ()  # trajectory: representative-metric, default all four
    attacks: tuple[str, ...] = DETECTION_ATTACKS  # adversarials to fit and test on
    goals: tuple[str, ...] = ("untargeted", "targeted")
    epsilon: float = 4 / 255  # Linf budget of bim / mifgsm (cw-l2 is unbounded)
    steps: int = 10  # bim / mifgsm steps
    full_budget: bool = False  # bim / mifgsm: the final iterate at epsilon, not the first success
    cw_steps: int = 30
    samples: int = 120  # identification probes attacked (split 40/30/30 train/val/test)
    fpr: float = 0.05  # operating point: threshold at this false-positive rate
    adaptive_epsilons: tuple[float, ...] = (2 / 255, 4 / 255, 8 / 255)
    adaptive_steps: int = 20
    adaptive_samples: int = 24
    adaptive_weights: tuple[float, ...] = (1.0, 10.0)

    def data_settings(self) -> dict[str, Any]:
        """What the shared adversarial data set depends on (detectors with equal settings
        reuse one data set)."""
        return {"attacks": sorted(self.attacks), "goals": sorted(self.goals),
                "epsilon": self.epsilon, "steps": self.steps, "cw_steps": self.cw_steps,
                "full_budget": self.full_budget,
                "samples": self.samples}

    @property
    def variant_list(self) -> tuple[str, ...]:
        if self.name != "trajectory":
            return ("",)
        return self.variants or TRAJECTORY_VARIANTS


def _strings(raw: Any, key: str, *, empty: bool = False) -> tuple[str, ...]:
    if not isinstance(raw, list) or (not raw and not empty) \
            or not all(isinstance(v, str) for v in raw):
        raise ValueError(f"{key}: must be a non-empty list of strings")
    return tuple(raw)


def _int(raw: Any, key: str, least: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < least:
        raise ValueError(f"{key}: must be an integer >= {least}, got {raw!r}")
    return raw


def _fractions(raw: Any, key: str) -> tuple[float, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{key}: must be a non-empty list like [\"2/255\", \"4/255\"]")
    return tuple(parse_fraction(v, f"{key}[{i}]") for i, v in enumerate(raw))


def parse_detector(table: Any, where: str) -> DetectorConfig:
    """Validate one ``[[detector]]`` table; every error names ``where.key``."""
    check_table(table, {f.name for f in fields(DetectorConfig)}, where)
    if not isinstance(table.get("name"), str):
        raise ValueError(f"{where}: missing required key name (trajectory, squeeze, ocsvm, "
                         "iforest or gallery)")
    values: dict[str, Any] = {"name": table["name"]}
    for key, raw in table.items():
        at = f"{where}.{key}"
        if key == "options":
            if not isinstance(raw, dict):
                raise ValueError(f"{at}: must be a table like {{ nu = 0.1 }}")
            values[key] = dict(raw)
        elif key in ("variants", "attacks", "goals"):
            values[key] = _strings(raw, at, empty=key == "variants")
        elif key in ("epsilon", "fpr"):
            values[key] = parse_fraction(raw, at)
        elif key in ("adaptive_epsilons", "adaptive_weights"):
            values[key] = _fractions(raw, at)
        elif key in ("steps", "cw_steps", "samples", "adaptive_steps", "adaptive_samples"):
            values[key] = _int(raw, at, 1)
        elif key == "full_budget":
            if not isinstance(raw, bool):
                raise ValueError(f"{at}: must be true or false, got {raw!r}")
            values[key] = raw
    cfg = DetectorConfig(**values)
    check_detector(cfg, where)
    return cfg


def check_detector(cfg: DetectorConfig, where: str) -> None:

    if cfg.name not in DETECTORS:
        raise ValueError(f"{where}.name: {cfg.name!r} is not one of {', '.join(DETECTORS)}")
    unknown = sorted(set(cfg.options) - set(detector_options(cfg.name)))
    if unknown:
        raise ValueError(f"{where}.options: unknown option {unknown[0]!r} for detector "
                         f"{cfg.name!r} (allowed: {', '.join(detector_options(cfg.name))})")
    for v in cfg.variants:
        if cfg.name != "trajectory" or v not in TRAJECTORY_VARIANTS:
            raise ValueError(f"{where}.variants: {v!r} is not a trajectory variant "
                             f"({', '.join(TRAJECTORY_VARIANTS)}; trajectory only)")
    for a in cfg.attacks:
        if a not in DETECTION_ATTACKS:
            raise ValueError(f"{where}.attacks: {a!r} is not one of {', '.join(DETECTION_ATTACKS)}")
    for g in cfg.goals:
        if g not in ("untargeted", "targeted"):
            raise ValueError(f"{where}.goals: {g!r} is not 'untargeted' or 'targeted'")
    if not 0 < cfg.fpr < 1:
        raise ValueError(f"{where}.fpr: must lie strictly between 0 and 1, got {cfg.fpr}")
    if not 0 < cfg.epsilon <= 1 or any(not 0 < e <= 1 for e in cfg.adaptive_epsilons):
        raise ValueError(f"{where}: epsilons are Linf budgets in (0, 1], like \"4/255\"")
    if cfg.samples < 10:
        raise ValueError(f"{where}.samples: needs >= 10 probes to split train/val/test")
