"""The registry of result kinds (:data:`KINDS`) and the one reader of every result file
facerobust writes: the wrapper's ``kind`` picks the kind; files written before the wrapper
are recognised by their shape and converted by their kind, other versions refused naming
both versions. A new kind of result adds its own module and one line in :data:`KINDS`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facerobust.eval.results_file import SCHEMA_VERSION, read_document, version_error
from facerobust.report.kind_audit import AUDIT
from facerobust.report.kind_base import Loaded, ReportKind
from facerobust.report.kind_compare import RUN_COMPARISON
from facerobust.report.kind_gate import GATE_ATTACK, GATE_LOOKALIKE, GATE_PHOTO
from facerobust.report.kind_physical import PHYSICAL
from facerobust.report.study import STUDY_KINDS, study_kind

KINDS: dict[str, ReportKind] = {k.name: k for k in (
    AUDIT,
    GATE_ATTACK,
    GATE_LOOKALIKE,
    GATE_PHOTO,
    PHYSICAL,
    RUN_COMPARISON,
    *STUDY_KINDS,
)}  # a new kind: its own module plus one line here


def from_document(doc: dict[str, Any], source: Path) -> Loaded:
    """Read ``doc`` (the JSON of ``source``) through its kind; older files are converted
    where their kind can, other versions refused naming both versions."""
    registry = KINDS
    version = doc.get("schema_version")
    if version == SCHEMA_VERSION:
        if "kind" not in doc:
            raise ValueError(f"{source}: results schema version {version} needs a 'kind' "
                             "(not written by facerobust)")
        kind = registry.get(str(doc["kind"]))
        if kind is None:
            raise ValueError(f"{source}: unknown result kind {doc['kind']!r} (this facerobust "
                             f"renders {', '.join(sorted(registry))})")
        return _loaded(kind, kind.read(doc, str(source)), source)
    for kind in registry.values():
        old = kind.legacy
        if old is not None and old.shape(doc):
            if doc.get(old.key) != old.version:
                raise version_error(str(source), doc.get(old.key),
                                    legacy=f"{old.what} schema {old.version}")
            return _loaded(kind, old.convert(doc, str(source)), source)
    if version is not None:
        raise version_error(str(source), version)
    raise ValueError(f"{source}: not a facerobust results file (no schema_version and not a "
                     "known study file)")


def _loaded(kind: ReportKind, result: Any, source: Path) -> Loaded:
    return Loaded(kind, result, source, kind.overview(result))


def load_result(path: str | Path) -> Loaded:
    """Any result file facerobust writes, typed."""
    return from_document(read_document(path), Path(path))


def render(path: str | Path, out_html: str | Path | None = None) -> Path:
    """Render any result file into its self-contained HTML page."""
    loaded = load_result(path)
    target = Path(out_html) if out_html else loaded.kind.html_path(loaded.source)
    target.write_text(loaded.kind.render(loaded, loaded.source, target), encoding="utf-8")
    return target


def render_study(json_path: str | Path, out_html: str | Path | None = None) -> Path:
    """Render one study JSON file to HTML (default: its kind's page path)."""
    json_path = Path(json_path)
    if study_kind(read_document(json_path, "result file")) is None:
        raise ValueError(f"{json_path}: not a comparison, adv-train, student card, "
                         "defensive-distillation, eval-clean or train-head result")
    return render(json_path, out_html)
