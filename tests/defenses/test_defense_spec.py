from __future__ import annotations

import pytest

from facerobust.defenses import JPEG, Compose, Median, known_defenses, parse_defense


def test_parse_simple_defaults_and_composition() -> None:
    d = parse_defense("jpeg:q=75")
    assert isinstance(d, JPEG) and d.q == 75
    assert parse_defense(" median ").spec == "median:k=3"
    c = parse_defense("jpeg:q=75+median:k=5")
    assert isinstance(c, Compose) and isinstance(c.stages[1], Median) and c.stages[1].k == 5
    assert parse_defense("gaussian:sigma=0.5").spec == "gaussian:sigma=0.5"
    assert parse_defense("TVM:weight=0.1,keep=0.4,steps=3").params() == {
        "weight": 0.1, "keep": 0.4, "steps": 3}
    assert any(s.startswith("jpeg:q=") for s in known_defenses())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("jpg:q=75", "unknown defense 'jpg'"),
        ("jpeg:quality=75", "no parameter 'quality'; allowed: q"),
        ("jpeg:q=high", "q='high' is not a valid int"),
        ("jpeg:q=7.5", "is not a valid int"),
        ("jpeg:q=0", r"q must be in \[1, 100\], got 0"),
        ("jpeg:q=75,q=80", "given twice"),
        ("jpeg:q", "expected 'key=value'"),
        ("jpeg:", "nothing after ':'"),
        ("jpeg:q=75+", "empty component"),
        ("+median", "empty component"),
        ("median:k=4", "k must be odd"),
        ("gaussian:sigma=0", r"sigma must be in \(0"),
        ("gaussian:sigma=nan", "sigma must be in"),
        ("bitdepth:bits=9", r"bits must be in \[1, 8\]"),
        ("none+jpeg", "'none' cannot be part of a composition"),
        ("rp:scale=0.9", "scale must be in"),
    ],
)
def test_bad_specs_raise_precise_value_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_defense(spec)


def test_non_string_spec_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        parse_defense(75)  # type: ignore[arg-type]
