"""The report section of each audit unit kind (:data:`facerobust.eval.kinds.UNIT_KINDS`):
a template of its own under ``templates/units/`` and where it goes on the page (``overview``:
beside the clean figures at the top; ``detail``: after the figures, in this order). A new kind
of unit adds its template and one line here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UnitSection:
    kind: str  # the unit kind's name (facerobust.eval.unit_kind.UnitKind.name)
    template: str
    place: str  # "overview" | "detail"


UNIT_SECTIONS: tuple[UnitSection, ...] = (
    UnitSection("clean", "units/clean.html.j2", "overview"),
    UnitSection("minimal", "units/minimal.html.j2", "detail"),
    UnitSection("defense", "units/defense.html.j2", "detail"),
    UnitSection("fusion", "units/fusion.html.j2", "detail"),
    UnitSection("detector", "units/detector.html.j2", "detail"),
    UnitSection("certify", "units/certify.html.j2", "detail"),
    UnitSection("physical", "units/physical.html.j2", "detail"),
    UnitSection("attack", "units/attack.html.j2", "detail"),
)


def sections_by_place() -> dict[str, list[str]]:
    """Template names per place, in registry order (what the page template loops over)."""
    out: dict[str, list[str]] = {"overview": [], "detail": []}
    for section in UNIT_SECTIONS:
        out[section.place].append(section.template)
    return out
