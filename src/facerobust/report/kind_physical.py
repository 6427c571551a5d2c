"""The physical-accessory study's kind (``physical``): its page shows the pooled verdicts, a
row per attacker x accessory x goal with the preview and the printable files (all inside the
run folder), and says what was simulated."""

from __future__ import annotations

from facerobust.eval.results_physical import PhysicalResults, physical_overview
from facerobust.eval.stats import Rate
from facerobust.report.kind_base import ReportKind, typed_page, typed_reader

TITLE = "Physical accessories against the face system"


def physical_rates(res: PhysicalResults) -> dict[str, Rate]:
    out: dict[str, Rate] = {}
    for s in res.summaries:
        label = f"{s.accessory} {s.goal} ({'universal' if s.universal else 'per photo'})"
        out[f"{label}: held-out success"] = s.success
        out[f"{label}: random texture"] = s.control
    return out


PHYSICAL = ReportKind(name=PhysicalResults.KIND, title=TITLE, read=typed_reader(PhysicalResults),
                      render=typed_page("physical.html.j2", TITLE),
                      overview=physical_overview, rates=physical_rates)
