from __future__ import annotations

import pytest

from facerobust.attacks import FGM, FGSM, PGD, CarliniWagnerL2, HopSkipJump, SquareAttack
from facerobust.attacks.registry import (
    ATTACKS,
    attack_entry,
    attack_names,
    build_attack,
    resolve_steps_queries,
)


def test_every_entry_builds_for_every_norm_it_claims() -> None:
    for name, entry in ATTACKS.items():
        for norm in entry.norms:
            attack = build_attack(name, norm)
            assert getattr(attack, "norm", "l2") == norm, (name, norm)


def test_names_map_to_the_right_attacks_with_defaults() -> None:
    assert isinstance(build_attack("fgsm", "linf"), FGSM)
    assert isinstance(build_attack("fgsm", "l2"), FGM)
    pgd = build_attack("pgd", "l2", steps=3)
    assert isinstance(pgd, PGD) and pgd.options.steps == 3
    assert build_attack("pgd", "linf").options.steps == 10  # registry default
    cw = build_attack("cw", "l2")
    assert isinstance(cw, CarliniWagnerL2) and cw.options.steps == 100
    square = build_attack("square", "linf", queries=50)
    assert isinstance(square, SquareAttack) and square.options.max_queries == 50
    assert isinstance(build_attack("hsj", "l2"), HopSkipJump)


def test_unsupported_pairs_name_both() -> None:
    with pytest.raises(ValueError, match=r"attack 'cw' does not support norm 'linf' "
                                         r"\(supported: l2\)"):
        build_attack("cw", "linf")
    with pytest.raises(ValueError, match=r"unknown attack 'zoo'"):
        attack_entry("zoo")
    with pytest.raises(ValueError, match="steps of attack 'pgd' must be an integer >= 1"):
        build_attack("pgd", "linf", steps=0)


def test_kinds_and_used_settings() -> None:
    assert set(attack_names("white-box")) == {"fgsm", "bim", "pgd", "mifgsm", "cw", "deepfool",
                                              "difgsm", "tifgsm", "nifgsm", "mditifgsm"}
    assert attack_names("score-based") == ("square",)
    assert attack_names("decision-based") == ("hsj",)
    assert resolve_steps_queries("fgsm", 5, 5) == {}  # fgsm uses neither
    assert resolve_steps_queries("square", 5, None) == {"queries": 1000}
