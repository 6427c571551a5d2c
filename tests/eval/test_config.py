from __future__ import annotations

from pathlib import Path

import pytest

from facerobust.eval.config import load_config, parse_config, parse_fraction

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_examples_and_demo_parse() -> None:
    from facerobust.eval.cli_demo import demo_config_text
    from facerobust.eval.config import tomllib

    files = sorted(EXAMPLES.glob("*.toml"))
    assert files, "examples/*.toml must exist"
    for path in files:
        cfg = load_config(path)
        assert cfg.attacks, path
    demo = parse_config(tomllib.loads(demo_config_text()))
    assert demo.models.victim == "dlib-resnet"


def test_fractions_and_attack_fields() -> None:
    cfg = parse_config({"attack": [{"name": "pgd", "epsilons": ["1/255", 0.5, "0.25"],
                                    "steps": 7, "goals": ["dodging"]}]})
    atk = cfg.attacks[0]
    assert atk.epsilons == pytest.approx((1 / 255, 0.5, 0.25))
    assert atk.steps == 7 and atk.norm == "linf" and atk.goals == ("dodging",)
    assert parse_fraction("2/255", "k") == pytest.approx(2 / 255)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"run": {"sed": 1}}, r"unknown key run\.sed"),
        ({"bogus": {}}, r"unknown section \[bogus\]"),
        ({"attack": [{"name": "pgd", "epsilons": []}]}, r"epsilons: must be a non-empty"),
        ({"attack": [{"name": "pgd", "epsilons": ["-1/255"]}]}, r"attack\[0\]\.epsilons\[0\]"),
        ({"attack": [{"name": "pgd", "epsilons": ["x"]}]}, r"cannot read 'x'"),
        ({"attack": [{"name": "zoo", "epsilons": [0.1]}]}, r"attack\[0\]\.name: 'zoo' is not one"),
        ({"attack": [{"name": "pgd", "epsilons": [0.1], "norm": "l1"}]}, r"attack\[0\]\.norm"),
        ({"attack": [{"epsilons": [0.1]}]}, r"attack\[0\]: missing required key"),
        ({"attack": [{"name": "pgd", "epsilons": [0.1], "goals": ["untargeted"]}]},
         r"needs \[identification\] enabled"),
        ({"run": {"seed": "zero"}}, r"run\.seed: must be a non-negative integer"),
        ({"identification": {"enabled": "yes"}}, r"identification\.enabled: must be true or false"),
        ({"data": {"clean_pairs_per_fold": 301}}, r"data\.clean_pairs_per_fold"),
        ({"minimal": {"goal": "targeted"}}, r"minimal\.goal"),
        ({"defense": [{"spec": "jpeg:quality=7"}]}, r"defense\[0\]\.spec"),
    ],
)
def test_bad_configs_name_the_key(doc: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_config(doc)


def test_load_config_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[run]\nseed = [\n")
    with pytest.raises(ValueError, match="bad.toml: not valid TOML"):
        load_config(bad)
    with pytest.raises(FileNotFoundError, match="missing.toml"):
        load_config(tmp_path / "missing.toml")
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[run]\nsede = 1\n")
    with pytest.raises(ValueError, match=r"wrong.toml: unknown key run\.sede"):
        load_config(wrong)


def test_fingerprint_changes_with_content() -> None:
    a = parse_config({"run": {"seed": 1}})
    b = parse_config({"run": {"seed": 2}})
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == parse_config({"run": {"seed": 1}}).fingerprint()
