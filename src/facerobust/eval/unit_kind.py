"""What every kind of audit unit declares (:class:`UnitKind`): how a config plans its units,
how the stored units become the typed :class:`~facerobust.eval.results_audit.Results` field,
and its executive-summary sentences and verdict rows. The kinds are listed once, in
:data:`facerobust.eval.kinds.UNIT_KINDS`: a new kind of unit is its own module there plus
one line in that tuple."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facerobust.eval.config import AuditConfig
from facerobust.eval.experiment import Experiment
from facerobust.eval.results import Unit
from facerobust.eval.results_audit import Results
from facerobust.eval.results_file import Verdict

# (key, fingerprint, the function computing it: a plain one or a ShardedUnit)
PlannedUnit = tuple[str, str, Callable[[], Unit]]
Stored = dict[str, dict[str, Any]]  # the run store's finished units of one kind, by key


def unit_seed(seed: int, key: str) -> int:
    """The seed of unit ``key``: a resumed run gives the same results as an uninterrupted one."""
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16)


def _nothing(_results: Results) -> list[Any]:
    return []


@dataclass(frozen=True)
class UnitKind:
    """One kind of audit unit (see the module docstring). ``prefix`` starts every key of the
    kind in the run store; ``field`` is the :class:`Results` attribute ``collect`` fills."""

    name: str
    prefix: str
    field: str
    plan: Callable[[AuditConfig, Experiment, Path], list[PlannedUnit]]
    collect: Callable[[AuditConfig, Stored], Any]
    sentences: Callable[[Results], list[str]] = _nothing
    verdicts: Callable[[Results], list[Verdict]] = _nothing

    def stored(self, units: Stored) -> Stored:
        """The units of this kind among all stored ``units``."""
        return {k: v for k, v in units.items() if k.startswith(self.prefix)}
