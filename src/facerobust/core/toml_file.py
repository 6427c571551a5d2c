"""Reading a user's TOML file: one place that turns a missing file or bad TOML into a
``ValueError`` naming the file (every config, spec and description reader uses it)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """The parsed document of ``path``; ``ValueError`` "``what`` PATH does not exist" or
    "PATH: not valid TOML: ..."."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{what} {path} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}") from None


__all__ = ["read_toml"]
