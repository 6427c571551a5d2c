"""Typed results of the physical-accessory study (kind ``physical``): one row per attacker,
accessory and goal (held-out success, the random-texture control, the printable files), and
pooled rows per accessory and goal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from facerobust.eval.results import Unit
from facerobust.eval.results_file import KindUnit, Overview, verdict
from facerobust.eval.stats import Rate


@dataclass(frozen=True)
class PhysicalRow(Unit):
    attacker: str
    target: str  # the attacker (dodging) or the victim (impersonation)
    accessory: str
    goal: str
    universal: bool
    success: Rate  # held-out photos x held-out captures, exact pipeline
    train_success: Rate  # the optimised photos under held-out captures (an upper bound)
    control: Rate  # a random palette texture of the same shape, same captures
    no_face: int  # held-out captures in which no face was found (not successes)
    printable: str  # PNG at ``dpi`` inside the run folder
    pdf: str  # the same at real size
    preview: str  # the attacker wearing it under held-out captures
    seconds: float
    trace: dict[str, list[float]] = field(default_factory=dict)  # loss, goal, nps, tv
    also: dict[str, Rate] = field(default_factory=dict)  # held-out success on other systems
    gate: Rate | None = None  # the same captures sent to a running gate over HTTP
    detected: Rate | None = None  # held-out captures a detector flagged (None: no detectors)
    control_detected: Rate | None = None  # the random texture's captures flagged


@dataclass(frozen=True)
class PhysicalSummary(Unit):
    accessory: str
    goal: str
    universal: bool
    attackers: int
    success: Rate
    control: Rate
    also: dict[str, Rate] = field(default_factory=dict)  # transfer / defended systems
    gate: Rate | None = None  # accepted (impersonation) / rejected (dodging) by a live gate
    detected: Rate | None = None  # held-out captures a detector flagged (None: no detectors)
    control_detected: Rate | None = None


@dataclass(frozen=True)
class PhysicalResults(KindUnit):
    KIND: ClassVar[str] = "physical"

    system: dict[str, Any]
    options: dict[str, Any]
    simulated: str  # what the physical step's simulation covers (the report says it)
    summaries: list[PhysicalSummary]
    rows: list[PhysicalRow]
    skipped: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class PhysicalUnit(Unit):
    """One ``[[physical]]`` audit unit: an accessory and goal on the victim's system."""

    key: str
    model: str
    summary: PhysicalSummary
    rows: list[PhysicalRow]
    simulated: str = ""


def physical_overview(res: PhysicalResults) -> Overview:
    """A verdict row per accessory and goal (pooled over attackers), beside its control."""
    rows, sentences = [], []
    for s in res.summaries:
        mode = "universal" if s.universal else "per photo"
        rows.append(verdict(f"printed {s.accessory} ({s.goal}, {mode}), held-out captures",
                            "physical", s.success, f"random texture: {s.control.text()}"))
        sentences.append(f"{s.accessory} for {s.goal} ({mode}, {s.attackers} attacker(s)): "
                         f"{s.success.text()} of held-out captures, against "
                         f"{s.control.text()} for a random texture of the same shape.")
    return Overview(rows, sentences)


__all__ = ["PhysicalResults", "PhysicalRow", "PhysicalSummary", "PhysicalUnit",
           "physical_overview"]
