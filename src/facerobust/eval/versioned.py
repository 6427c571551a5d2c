"""Read a versioned JSON result file into its typed dataclass, refusing other schema versions.

Every study result (comparison, student card, defensive distillation, adv-train's judged
block) carries its own schema version; :func:`load_versioned` names the file and both versions
when they differ, and :meth:`facerobust.eval.results.Unit.from_dict` names missing keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from facerobust.eval.results import Unit

U = TypeVar("U", bound=Unit)


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


def from_versioned(cls: type[U], doc: Any, source: str, *, what: str, expected: int,
                   key: str = "schema_version") -> U:
    check_version(doc, source, what=what, expected=expected, key=key)
    return cls.from_dict(doc, where=source)


def load_versioned(cls: type[U], path: str | Path, *, what: str, expected: int,
                   key: str = "schema_version") -> U:
    """Read ``path`` as a ``cls`` of schema ``expected`` (its version under ``key``)."""
    return from_versioned(cls, read_json(path, what), str(path), what=what,
                          expected=expected, key=key)
