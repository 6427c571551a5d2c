from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import pytest
import torch

from facerobust.attacks import L2, LINF, PGD, L2Ball, LinfBall, PGDOptions, Threat, threat_for
from facerobust.attacks.registry import build_attack
from facerobust.attacks.threat import THREATS, supported

BALLS = [LINF, L2]
SRC = Path(__file__).resolve().parents[2] / "src" / "facerobust"


def _batch(seed: int = 0) -> torch.Tensor:
    return torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("threat", BALLS, ids=str)
def test_projection_stays_within_the_budget(threat: Threat) -> None:
    delta = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    eps = torch.tensor([0.0, 1e-3, 0.01, 0.1, 1.0, 10.0])
    projected = threat.project(delta, eps)
    assert (threat.norm(projected) <= eps * (1 + 1e-5) + 1e-7).all()
    # a perturbation already inside its ball is left as it is
    small = threat.project(delta, threat.norm(delta) * 2)
    torch.testing.assert_close(small, delta)


@pytest.mark.parametrize("threat", BALLS, ids=str)
def test_clip_keeps_ball_and_box(threat: Threat) -> None:
    x = _batch()
    adv = x + 3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    eps = torch.full((6,), 0.05)
    out = threat.clip(x, adv, eps)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert (threat.norm(out - x) <= 0.05 + 1e-6).all()


@pytest.mark.parametrize("threat", BALLS, ids=str)
def test_random_start_is_inside_the_ball_and_seeded(threat: Threat) -> None:
    x = _batch()
    eps = torch.tensor([0.01, 0.02, 0.05, 0.1, 0.5, 1.0])
    a = threat.random_start(x, eps, torch.Generator().manual_seed(3))
    b = threat.random_start(x, eps, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert (threat.norm(a) <= eps + 1e-6).all() and (threat.norm(a) > 0).all()


def test_steepest_directions_have_unit_size() -> None:
    g = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    assert torch.equal(LINF.direction(g), g.sign())
    torch.testing.assert_close(L2.norm(L2.direction(g)), torch.ones(4))
    # the first-order gain of a unit step is the dual norm
    for threat in BALLS:
        gain = (g * threat.direction(g)).flatten(1).sum(1)
        torch.testing.assert_close(gain, threat.dual_norm(g))


@pytest.mark.parametrize(("threat", "text", "value"), [
    (LINF, "2/255", 2 / 255), (LINF, "8/255", 8 / 255), (LINF, "7.65/255", 0.03),
    (L2, "0.5", 0.5), (L2, "1.25", 1.25), (LINF, "inf", math.inf), (L2, "inf", math.inf),
])
def test_formatter_round_trips_with_parse(threat: Threat, text: str, value: float) -> None:
    assert threat.format_epsilon(value) == text
    assert threat.parse_epsilon(text) == pytest.approx(value)
    assert threat.format_epsilon(threat.parse_epsilon(text)) == text


def test_budget_validation_names_the_key() -> None:
    LINF.check_epsilon(8 / 255, "attack[0].epsilons[0]", 3 * 150 * 150)
    with pytest.raises(ValueError, match=r"attack\[0\]\.epsilons\[1\]: 8 is above the largest "
                                         r"linf budget 1 .*did you mean 8/255\?"):
        LINF.check_epsilon(8, "attack[0].epsilons[1]", 3 * 150 * 150)
    with pytest.raises(ValueError, match="above the largest l2 budget 259.8"):
        L2.check_epsilon(300, "minimal.max_epsilon", 3 * 150 * 150)


def test_threat_for_parses_names_and_names_the_choices() -> None:
    assert threat_for("linf") is LINF and threat_for("l2") is L2
    assert isinstance(threat_for("linf"), LinfBall) and isinstance(threat_for(L2), L2Ball)
    assert tuple(THREATS) == ("linf", "l2")
    with pytest.raises(ValueError, match=r"norm must be 'linf' or 'l2', got 'l1'"):
        threat_for("l1")
    with pytest.raises(ValueError, match=r"norm must be 'linf' or 'l2', got 'Linf'"):
        threat_for("Linf")


def test_attacks_take_a_threat_and_refuse_unsupported_ones() -> None:
    attack = PGD(L2, PGDOptions(steps=4))
    assert attack.threat is L2 and attack.norm == "l2" and attack.options.steps == 4
    assert PGD("l2", steps=4).settings() == attack.settings()
    with pytest.raises(ValueError, match=r"attack 'cw' does not support norm 'linf' "
                                         r"\(supported: l2\)"):
        build_attack("cw", LINF)
    with pytest.raises(ValueError, match="does not support norm 'linf'"):
        supported(LINF, {L2Ball: 1}, "cw")
    with pytest.raises(ValueError, match="PGDOptions has no option 'step'"):
        PGD(LINF, step=3)
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        PGDOptions(steps=0)


# ------------------------------------------------------------------ no norm-string compares
NORM_NAMES = {"linf", "l2"}
ALLOWED = {SRC / "attacks" / "threat.py"}


def _norm_compares(tree: ast.AST) -> list[int]:
    """Lines comparing anything with a norm name (==, !=, in, not in)."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        for part in [node.left, *node.comparators]:
            values = part.elts if isinstance(part, (ast.Tuple, ast.List, ast.Set)) else [part]
            if any(isinstance(v, ast.Constant) and v.value in NORM_NAMES for v in values):
                lines.append(node.lineno)
                break
    return lines


def test_the_checker_finds_compares() -> None:
    code = 'a = norm == "linf"\nb = "l2" != n\nc = n in ("linf", "l2")\nd = x == "cosine"\n'
    assert _norm_compares(ast.parse(code)) == [1, 2, 3]


def test_no_norm_string_is_compared_outside_the_threat_module() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path in ALLOWED:
            continue
        text = path.read_text(encoding="utf-8")
        found += [f"{path.relative_to(SRC)}:{n}" for n in _norm_compares(ast.parse(text))]
        # template expressions and generated code are strings: catch them by pattern too
        for n, line in enumerate(text.splitlines(), 1):
            if re.search(r"""(==|!=)\s*['"](linf|l2)['"]|['"](linf|l2)['"]\s*(==|!=)""", line) \
                    and f"{path.relative_to(SRC)}:{n}" not in found:
                found.append(f"{path.relative_to(SRC)}:{n}")
    assert not found, f"norm names compared outside attacks/threat.py: {found}"
