"""The registry of audit unit kinds: every typed unit field of Results is filled by exactly
one kind, keys never collide, and the summary is assembled kind by kind."""

from __future__ import annotations

import dataclasses

from facerobust.eval.kinds import UNIT_KINDS
from facerobust.eval.results_audit import DERIVED_KEYS, Results

META = {"command", "config", "seed", "started", "finished", "dataset", "models", "config_text",
        "config_fingerprint", "environment"}


def test_every_unit_field_of_results_has_exactly_one_kind() -> None:
    fields = {f.name for f in dataclasses.fields(Results)} - META - set(DERIVED_KEYS)
    filled = [k.field for k in UNIT_KINDS]
    assert sorted(filled) == sorted(fields)
    prefixes = [k.prefix for k in UNIT_KINDS]
    assert len(set(prefixes)) == len(prefixes)
    assert all(not a.startswith(b) for a in prefixes for b in prefixes if a != b)


def test_stored_units_are_split_by_prefix() -> None:
    units = {"clean-m": {"x": 1}, "attack-m-pgd-dodging": {"y": 2}, "defense-0-m": {"z": 3}}
    by_kind = {k.name: sorted(k.stored(units)) for k in UNIT_KINDS}
    assert by_kind["clean"] == ["clean-m"] and by_kind["attack"] == ["attack-m-pgd-dodging"]
    assert by_kind["defense"] == ["defense-0-m"] and by_kind["fusion"] == []


def test_every_unit_kind_has_one_report_section() -> None:
    from facerobust.report.unit_sections import UNIT_SECTIONS

    assert sorted(s.kind for s in UNIT_SECTIONS) == sorted(k.name for k in UNIT_KINDS)
    assert {s.place for s in UNIT_SECTIONS} <= {"overview", "detail"}
