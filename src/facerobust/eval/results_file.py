"""The one versioned wrapper of every result file facerobust writes.

A result file is ``{"schema_version": SCHEMA_VERSION, "kind": KIND, ...the typed result}``:
``kind`` says which typed result it holds (an audit's ``results.json`` and a gate study's
``results.json`` are told apart by it), ``schema_version`` is the one schema constant of the
package. Readers of older files (an audit's schema 2, the studies' own schema 1) live with
each kind (:mod:`facerobust.report.kinds`); a file of any other version is refused with a
message naming both versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from facerobust.eval.results import Unit
from facerobust.eval.stats import Rate
from facerobust.eval.store import write_json_atomic
from facerobust.eval.versioned import read_json

SCHEMA_VERSION = 3
WRAPPER_KEYS = ("schema_version", "kind")


class KindUnit(Unit):
    """A result that is a whole file: its class names the wrapper's ``kind``."""

    KIND: ClassVar[str] = ""


def wrap(result: KindUnit) -> dict[str, Any]:
    """``result`` as the JSON document of its file (wrapper keys first)."""
    if not result.KIND:
        raise TypeError(f"{type(result).__name__} declares no KIND: it is not a file's result")
    return {"schema_version": SCHEMA_VERSION, "kind": result.KIND, **result.to_dict()}


def write_result_file(path: str | Path, result: KindUnit) -> Path:
    """Write ``result`` atomically to ``path`` in the versioned wrapper."""
    path = Path(path)
    write_json_atomic(path, wrap(result))
    return path


def version_error(source: str, found: Any, *, legacy: str = "") -> ValueError:
    """The refusal of a file of another version, naming both versions."""
    also = f"; it also converts {legacy}" if legacy else ""
    return ValueError(f"{source}: results schema version {found!r} cannot be read by this "
                      f"facerobust (it reads schema version {SCHEMA_VERSION}{also}); re-run "
                      "the command with this version")


def read_document(path: str | Path, what: str = "results file") -> dict[str, Any]:
    """Parse a result file; the top level must be an object."""
    doc = read_json(path, what)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a facerobust results file (top level is not an object)")
    return doc


@dataclass(frozen=True)
class Verdict(Unit):
    """One line of a report's verdict table: a threat at a budget, its success rate (k/n
    with its 95% interval) and a plain word (:func:`verdict_word`)."""

    threat: str
    budget: str
    success: Rate
    verdict: str
    note: str = ""


@dataclass(frozen=True)
class Overview(Unit):
    """What a report opens with: the verdict rows and a few short sentences."""

    verdicts: list[Verdict]
    sentences: list[str]


FOOLED_LOW = 0.5  # the whole 95% interval at or above: most attempts succeed
HOLDS_HIGH = 0.2  # the whole 95% interval at or below: few attempts succeed
UNCLEAR_WIDTH = 0.5  # an interval wider than this says little either way
VERDICT_RULE = (f"fooled: the 95% interval lies at or above {FOOLED_LOW:.0%}; holds: it lies at "
                f"or below {HOLDS_HIGH:.0%}; unclear: it is wider than {UNCLEAR_WIDTH:.0%} "
                "(too few samples); partly: otherwise.")


def verdict_word(success: Rate) -> str:
    """``fooled`` / ``holds`` / ``partly`` / ``unclear`` from an attack's success interval
    (:data:`VERDICT_RULE`); ``not run`` without trials."""
    if success.n == 0:
        return "not run"
    low, high = success.ci95
    if low >= FOOLED_LOW:
        return "fooled"
    if high <= HOLDS_HIGH:
        return "holds"
    if high - low > UNCLEAR_WIDTH:
        return "unclear"
    return "partly"


def verdict(threat: str, budget: str, success: Rate, note: str = "") -> Verdict:
    return Verdict(threat, budget, success, verdict_word(success), note)
