"""Versioned JSON files: read one with errors naming the file, and check its schema
version with an error naming both versions (typed reading: :mod:`facerobust.eval.versioned`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json(path: str | Path, what: str) -> Any:
    """Parse ``path``; a missing or unparsable file is a clear error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from None


def check_version(doc: Any, source: str, *, what: str, expected: int,
                  key: str = "schema_version") -> None:
    """``doc[key]`` must equal ``expected``; the error names ``source`` and both versions."""
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: not a {what} (top level is not an object)")
    found = doc.get(key)
    if found != expected:
        raise ValueError(f"{source}: {what} schema version {found!r} cannot be read by this "
                         f"facerobust (it reads {what} schema version {expected}); re-run the "
                         "command with this version")
