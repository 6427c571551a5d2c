"""Read an audit's ``results.json`` into the typed :class:`~.results_audit.Results`.

Schema 3 is read as written; a schema-2 file (before the wrapper's ``kind``, with the derived
figures as plain dicts) is converted on read: its units are parsed and every derived block
recomputed, so an old run renders with today's report. Other versions are refused naming
both versions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facerobust.eval.audit_summary import add_derived
from facerobust.eval.results_audit import DERIVED_KEYS, Results
from facerobust.eval.results_file import SCHEMA_VERSION, read_document, version_error

LEGACY_AUDIT_SCHEMA = 2  # results.json before the wrapper (converted on read)


def is_legacy_audit(doc: dict[str, Any]) -> bool:
    """A schema-2 ``results.json`` of ``audit``/``attack``/``defend``/``detect``/``demo``."""
    return (doc.get("schema_version") == LEGACY_AUDIT_SCHEMA and "kind" not in doc
            and "clean" in doc and "models" in doc)


def audit_from_document(doc: dict[str, Any], source: str) -> Results:
    """The typed results of an audit document (schema 3, or 2 converted)."""
    version = doc.get("schema_version")
    if version == SCHEMA_VERSION:
        if doc.get("kind") != Results.KIND:
            raise ValueError(f"{source}: holds a {doc.get('kind')!r} result, not an audit's "
                             "results.json")
        return Results.from_dict(doc, where=source)
    if is_legacy_audit(doc):
        core = {k: v for k, v in doc.items() if k not in DERIVED_KEYS}
        return add_derived(Results.from_dict(core, where=source))
    raise version_error(source, version, legacy=f"an audit's schema {LEGACY_AUDIT_SCHEMA}")


def load_results(path: str | Path) -> Results:
    """Read ``results.json``, check its version and kind and the shape of every unit."""
    return audit_from_document(read_document(path), str(path))
