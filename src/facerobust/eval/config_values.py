"""Config value readers shared by :mod:`.config` and :mod:`.detector_config`."""

from __future__ import annotations

from typing import Any

from facerobust.attacks.epsilons import parse_epsilon


def parse_fraction(value: Any, key: str) -> float:
    """``"2/255"``, ``0.01`` or ``"0.01"`` -> finite float >= 0 (errors name ``key``)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{key}: cannot read {value!r} as a number or fraction")
    try:
        number = parse_epsilon(str(value))
    except ValueError as err:
        raise ValueError(f"{key}: cannot read {value!r} as a number or fraction ({err})") from err
    if number == float("inf"):
        raise ValueError(f"{key}: must be finite, got {value!r}")
    return number


def check_table(table: Any, allowed: set[str], where: str) -> dict[str, Any]:
    """``table`` when it is a TOML table whose keys are all ``allowed``; else a ValueError
    naming ``where`` (and the first unknown key, with the allowed ones)."""
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table, got {type(table).__name__}")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"unknown key {where}.{unknown[0]} "
                         f"(allowed: {', '.join(sorted(allowed))})")
    return table
