"""Read a versioned JSON result file into its typed dataclass, refusing other schema versions.

Every study result (comparison, student card, defensive distillation, adv-train's judged
block) carries its own schema version; :func:`load_versioned` names the file and both versions
when they differ, and :meth:`facerobust.eval.results.Unit.from_dict` names missing keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from facerobust.core.versioned import check_version, read_json
from facerobust.eval.results import Unit

__all__ = ["check_version", "from_versioned", "load_versioned", "read_json"]

U = TypeVar("U", bound=Unit)


def from_versioned(cls: type[U], doc: Any, source: str, *, what: str, expected: int,
                   key: str = "schema_version") -> U:
    check_version(doc, source, what=what, expected=expected, key=key)
    return cls.from_dict(doc, where=source)


def load_versioned(cls: type[U], path: str | Path, *, what: str, expected: int,
                   key: str = "schema_version") -> U:
    """Read ``path`` as a ``cls`` of schema ``expected`` (its version under ``key``)."""
    return from_versioned(cls, read_json(path, what), str(path), what=what,
                          expected=expected, key=key)
