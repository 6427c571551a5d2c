"""Defense spec strings: ``"name"``, ``"name:k=v,k=v"`` and compositions joined by ``+``.

>>> from facerobust.defenses import parse_defense
>>> parse_defense("jpeg:q=75+median:k=3").spec
'jpeg:q=75+median:k=3'
>>> parse_defense("bitdepth").spec
'bitdepth:bits=4'

Every malformed spec raises a ``ValueError`` naming the offending part.
"""

from __future__ import annotations

from typing import Any

from facerobust.defenses.base import Compose, Defense, Identity
from facerobust.defenses.smoothing import GaussianNoise
from facerobust.defenses.transforms import JPEG, TVM, BitDepth, GaussianBlur, Median, ResizePad

#: name -> (class, {parameter: type}); one line per defense
DEFENSES: dict[str, tuple[type[Defense], dict[str, type]]] = {
    "none": (Identity, {}),
    "jpeg": (JPEG, {"q": int}),
    "bitdepth": (BitDepth, {"bits": int}),
    "median": (Median, {"k": int}),
    "gaussian": (GaussianBlur, {"sigma": float}),
    "tvm": (TVM, {"weight": float, "keep": float, "steps": int}),
    "rp": (ResizePad, {"scale": float}),
    "smooth": (GaussianNoise, {"sigma": float, "n": int, "alpha": float}),
}


def _describe(name: str) -> str:
    keys = DEFENSES[name][1]
    return name + (":" + ",".join(f"{k}=<{t.__name__}>" for k, t in keys.items()) if keys else "")


def known_defenses() -> list[str]:
    """Usage strings for all defenses, e.g. ``"jpeg:q=<int>"``."""
    return [_describe(name) for name in DEFENSES]


def _convert(value: str, kind: type, key: str, part: str) -> Any:
    try:
        if kind is int:
            return int(value)
        return float(value)
    except ValueError:
        raise ValueError(
            f"defense {part!r}: {key}={value!r} is not a valid {kind.__name__}"
        ) from None


def _parse_one(part: str, whole: str) -> Defense:
    if not part:
        raise ValueError(f"defense spec {whole!r} has an empty component (check the '+' signs)")
    name, sep, rest = part.partition(":")
    name = name.strip().lower()
    if name not in DEFENSES:
        raise ValueError(f"unknown defense {name!r} in {whole!r}; known: "
                         + ", ".join(known_defenses()))
    cls, allowed = DEFENSES[name]
    kwargs: dict[str, Any] = {}
    if sep and not rest.strip():
        raise ValueError(f"defense {part!r}: nothing after ':' (expected k=v pairs)")
    for item in rest.split(",") if rest.strip() else []:
        key, eq, value = (s.strip() for s in item.partition("="))
        if not eq or not key or not value:
            raise ValueError(f"defense {part!r}: expected 'key=value', got {item!r}")
        if key not in allowed:
            ok = ", ".join(allowed) or "(none)"
            raise ValueError(f"defense {name!r} has no parameter {key!r}; allowed: {ok}")
        if key in kwargs:
            raise ValueError(f"defense {part!r}: parameter {key!r} given twice")
        kwargs[key] = _convert(value, allowed[key], key, part)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:
        raise ValueError(f"defense {part!r}: {err}") from None


def parse_defense(spec: str) -> Defense:
    """Build a :class:`Defense` from ``"name:k=v,..."`` or ``"a:...+b:..."`` (applied left to
    right). Raises ``ValueError`` on unknown names/parameters, bad values, empty parts."""
    if not isinstance(spec, str):
        raise TypeError(f"defense spec must be a str, got {type(spec).__name__}")
    if not spec.strip():
        raise ValueError("defense spec is empty; known: " + ", ".join(known_defenses()))
    parts = [_parse_one(p.strip(), spec) for p in spec.split("+")]
    if len(parts) == 1:
        return parts[0]
    if any(isinstance(p, Identity) for p in parts):
        raise ValueError(f"'none' cannot be part of a composition: {spec!r}")
    return Compose(parts)
