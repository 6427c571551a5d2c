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
