"""Parse budgets given on the command line.

``"1/255,2/255,0.03"`` -> ``[0.0039.., 0.0078.., 0.03]``. Writing a budget belongs to its
threat: :meth:`facerobust.attacks.threat.Threat.format_epsilon`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def parse_epsilon(text: str) -> float:
    """One budget: a float (``0.03``), a fraction (``8/255``) or ``inf``."""
    t = text.strip()
    if not t:
        raise ValueError("empty epsilon")
    try:
        if "/" in t:
            num, _, den = t.partition("/")
            d = float(den)
            if d == 0:
                raise ValueError(f"epsilon {text!r} divides by zero")
            value = float(num) / d
        else:
            value = float(t)
    except ValueError as err:
        if "divides by zero" in str(err):
            raise
        raise ValueError(f"cannot parse epsilon {text!r}: use numbers like 0.03 or 8/255") from None
    if math.isnan(value) or value < 0:
        raise ValueError(f"epsilon must be >= 0, got {text!r}")
    return value


def parse_epsilons(text: str | Sequence[float]) -> list[float]:
    """Comma-separated budgets (``"1/255,2/255,0.03"``) or a list of numbers, validated."""
    if not isinstance(text, str):
        return [parse_epsilon(str(v)) for v in text] if len(text) else _empty()
    parts = [p for p in text.split(",")]
    if not text.strip():
        return _empty()
    return [parse_epsilon(p) for p in parts]


def _empty() -> list[float]:
    raise ValueError("no epsilons given: use e.g. --eps 1/255,2/255,4/255")
