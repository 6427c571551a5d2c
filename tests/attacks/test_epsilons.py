from __future__ import annotations

import math

import pytest

from facerobust.attacks import format_epsilon, parse_epsilons


def test_parse_fractions_and_floats() -> None:
    eps = parse_epsilons("1/255,2/255,0.03")
    assert eps == pytest.approx([1 / 255, 2 / 255, 0.03])
    assert parse_epsilons(" 8/255 , inf ")[1] == math.inf
    assert parse_epsilons([0.1, 0.2]) == [0.1, 0.2]
    assert format_epsilon(2 / 255, "linf") == "2/255"
    assert format_epsilon(0.03, "linf") == "7.65/255"
    assert format_epsilon(0.5, "l2") == "0.5" and format_epsilon(math.inf, "l2") == "inf"
    with pytest.raises(ValueError, match="norm must be"):
        format_epsilon(0.1, "l1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no epsilons given"),
        ("abc", "cannot parse epsilon 'abc'"),
        ("1/255,-2/255", "epsilon must be >= 0"),
        ("1/0", "divides by zero"),
        ("1/255,,2/255", "empty epsilon"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_epsilons(text)
