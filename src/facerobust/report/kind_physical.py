"""The physical-accessory study's kind (``physical``): its page shows the pooled verdicts, a
row per attacker x accessory x goal with the preview and the printable files (all inside the
run folder), and says what was simulated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facerobust.eval.results_file import VERDICT_RULE
from facerobust.eval.results_physical import PhysicalResults, physical_overview
from facerobust.eval.stats import Rate
from facerobust.report.kind_base import Loaded, ReportKind, typed_reader
from facerobust.report.page import environment

TITLE = "Physical accessories against the face system"


def _render(loaded: Loaded, json_path: Path, html_path: Path) -> str:
    return environment().get_template("physical.html.j2").render(
        r=loaded.result, title=TITLE, overview=loaded.overview, source=json_path.name,
        verdict_rule=VERDICT_RULE)


def physical_rates(res: PhysicalResults) -> dict[str, Rate]:
    out: dict[str, Rate] = {}
    for s in res.summaries:
        label = f"{s.accessory} {s.goal} ({'universal' if s.universal else 'per photo'})"
        out[f"{label}: held-out success"] = s.success
        out[f"{label}: random texture"] = s.control
    return out


def _read(doc: dict[str, Any], source: str) -> Any:
    return typed_reader(PhysicalResults)(doc, source)


PHYSICAL = ReportKind(name=PhysicalResults.KIND, title=TITLE, read=_read, render=_render,
                      overview=physical_overview, rates=physical_rates)
