"""The gate studies' kinds: ``gate-attack`` (black-box attack over HTTP), ``gate-photo``
(chip- vs photo-space adversarial photos) and ``gate-lookalike`` (the /identify look-alike
search); schema-1 files (before the wrapper) are read too."""

from __future__ import annotations

from facerobust.eval.results_gate import (
    GateAttackResults,
    LookalikeResults,
    PhotoStudyResults,
    gate_attack_overview,
    lookalike_overview,
    photo_overview,
)
from facerobust.eval.stats import Rate
from facerobust.report.kind_base import Legacy, ReportKind, typed_page, typed_reader


def gate_rates(res: GateAttackResults) -> dict[str, Rate]:
    out: dict[str, Rate] = {}
    for b in res.budgets:
        label = f"{res.attack.upper()} {res.norm} @ {b.eps:.6g}"
        out[f"{label}: accepted"] = b.success
        if b.success_within_lockout is not None:
            out[f"{label}: accepted before the lock-out"] = b.success_within_lockout
    return out


def photo_rates(res: PhotoStudyResults) -> dict[str, Rate]:
    out: dict[str, Rate] = {}
    for c in res.cells:
        label = f"{c.method} @ {c.eps:.6g} as {c.fmt}"
        out[f"{label}: gate accepts"] = c.gate_success
        out[f"{label}: in memory"] = c.in_memory_success
    return out


GATE_ATTACK = ReportKind(
    name=GateAttackResults.KIND, title="Black-box attack on the gate over HTTP",
    read=typed_reader(GateAttackResults),
    render=typed_page("gate_attack.html.j2", "Black-box attack on the gate over HTTP"),
    overview=gate_attack_overview, rates=gate_rates,
    legacy=Legacy(shape=lambda doc: "budgets" in doc and "gate" in doc, version=1, key="schema",
                  convert=typed_reader(GateAttackResults), what="attack-gate's"))
GATE_PHOTO = ReportKind(
    name=PhotoStudyResults.KIND,
    title="Chip-space vs photo-space adversarial photos through the gate",
    read=typed_reader(PhotoStudyResults),
    render=typed_page("gate_photo.html.j2",
                 "Chip-space vs photo-space adversarial photos through the gate"),
    overview=photo_overview, rates=photo_rates,
    legacy=Legacy(shape=lambda doc: "cells" in doc and "gate" in doc, version=1, key="schema",
                  convert=typed_reader(PhotoStudyResults), what="gate-photo-attack's"))
GATE_LOOKALIKE = ReportKind(
    name=LookalikeResults.KIND, title="Look-alike search through the gate's /identify",
    read=typed_reader(LookalikeResults),
    render=typed_page("gate_lookalike.html.j2", "Look-alike search through the gate's /identify"),
    overview=lookalike_overview,
    rates=lambda r: {"look-alike per /identify query": r.found,
                     "found look-alike accepted by /verify": r.verified})
