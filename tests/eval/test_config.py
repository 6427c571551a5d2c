from __future__ import annotations

from pathlib import Path

import pytest

from facerobust.eval.config import load_config, parse_config, parse_fraction

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_examples_and_demo_parse() -> None:
    from facerobust.cli.demo import demo_config_text
    from facerobust.eval.config import tomllib
    from facerobust.service.remote import load_remote

    files = sorted(p for p in EXAMPLES.glob("*.toml") if p.name != "gate.toml")  # tests/service
    assert files, "examples/*.toml must exist"
    remote = [p for p in files if "remote" in tomllib.loads(p.read_text())]
    assert remote, "examples/remote-compreface.toml must exist"
    for path in remote:  # attack-gate [remote] descriptions, not audits
        assert load_remote(path).url.startswith("http"), path
    for path in sorted(set(files) - set(remote)):
        cfg = load_config(path)
        assert cfg.attacks or cfg.detectors or cfg.certify or cfg.physical, path
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
        ({"attack": [{"name": "zoo", "epsilons": [0.1]}]}, r"attack\[0\]: unknown attack 'zoo'"),
        ({"attack": [{"name": "cw", "norm": "linf", "epsilons": [0.1]}]},
         r"attack\[0\]: attack 'cw' does not support norm 'linf' \(supported: l2\)"),
        ({"attack": [{"name": "pgd", "epsilons": [0.1], "steps": 0}]},
         r"attack\[0\]\.steps: must be an integer >= 1"),
        ({"attack": [{"name": "pgd", "epsilons": [0.1], "goals": []}]},
         r"attack\[0\]\.goals: must name at least one goal"),
        ({"data": {"attack_pairs": 0}}, r"data\.attack_pairs: must be >= 1"),
        ({"minimal": {"samples": 0}}, r"minimal\.samples: must be >= 1"),
        ({"defense": [{"spec": "jpeg", "eot": 0}]}, r"defense\[0\]\.eot: must be an integer >= 1"),
        ({"defense": [{"spec": "jpeg", "attack": "square"}]},
         r"defense\[0\]: attack 'square' is score-based"),
        ({"defense": [{"spec": "jpeg", "goal": "untargeted"}]},
         r"defense\[0\]\.goal: 'untargeted' needs \[identification\] enabled"),
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


def test_cw_linf_audit_config_exits_non_zero_naming_both(tmp_path: Path, capsys) -> None:
    from facerobust.cli import main

    config = tmp_path / "cw.toml"
    config.write_text('[[attack]]\nname = "cw"\nnorm = "linf"\nepsilons = ["4/255"]\n')
    assert main(["audit", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "attack 'cw' does not support norm 'linf'" in err and "cw.toml" in err
    assert not (tmp_path / "out").exists()


def test_defaults_come_from_the_registry_and_identification_defenses_parse() -> None:
    cfg = parse_config({"identification": {"enabled": True},
                        "attack": [{"name": "cw", "norm": "l2", "epsilons": [0.5]}],
                        "defense": [{"spec": "jpeg", "goal": "untargeted",
                                     "blackbox_queries": 50}]})
    assert cfg.attacks[0].steps is None and cfg.defenses[0].eot is None
    assert cfg.defenses[0].goal == "untargeted" and cfg.defenses[0].blackbox_queries == 50


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


def _bad_value(field_name: str, default: object) -> object:
    """A value of the wrong kind or out of range for any config key."""
    if field_name in ("epsilons",):
        return []
    if field_name == "max_epsilon":
        return "x"
    if field_name in ("goals", "others"):
        return "not-a-list"
    if isinstance(default, bool):
        return "maybe"
    if isinstance(default, int) or field_name in ("steps", "queries", "eot"):
        return -1
    return 12345  # strings get a number


def _every_key() -> list[tuple[str, str, object]]:
    import dataclasses

    from facerobust.eval import config as C

    sections = [("run", C.RunConfig), ("data", C.DataConfig),
                ("identification", C.IdentificationConfig), ("models", C.ModelsConfig),
                ("minimal", C.MinimalConfig), ("attack", C.AttackConfig),
                ("defense", C.DefenseConfig)]
    keys = []
    for section, cls in sections:
        for f in dataclasses.fields(cls):
            default = None if f.default is dataclasses.MISSING else f.default
            keys.append((section, f.name, _bad_value(f.name, default)))
    return keys


@pytest.mark.parametrize(("section", "key", "bad"), _every_key())
def test_every_key_with_a_bad_value_is_named(section: str, key: str, bad: object) -> None:
    base = {"attack": {"name": "pgd", "epsilons": ["1/255"]}, "defense": {"spec": "jpeg"}}
    if section in base:
        doc = {section: [{**base[section], key: bad}]}
        where = f"{section}[0].{key}"
    else:
        doc = {section: {key: bad}}
        where = f"{section}.{key}"
    with pytest.raises(ValueError) as err:
        parse_config(doc)
    assert where in str(err.value), str(err.value)


@pytest.mark.parametrize(("doc", "message"), [
    ({"attack": [{"name": "pgd", "epsilons": ["510/255"]}]},
     r"attack\[0\]\.epsilons\[0\]: 2 is above the largest linf budget 1 .*did you mean 2/255"),
    ({"attack": [{"name": "pgd", "norm": "l2", "epsilons": [300]}]},
     r"attack\[0\]\.epsilons\[0\]: 300 is above the largest l2 budget 259.8"),
    ({"defense": [{"spec": "jpeg", "epsilons": [2]}]}, r"defense\[0\]\.epsilons\[0\]"),
    ({"minimal": {"max_epsilon": 0}}, r"minimal\.max_epsilon: must be > 0"),
    ({"data": {"dataset": ".."}}, r"data\.dataset: '\.\.' is not a dataset name"),
    ({"identification": {"identities": 1}}, r"identification\.identities: must be >= 2"),
])
def test_budgets_and_names_out_of_range(doc: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_config(doc)


def test_surrogates_must_be_loaded_models() -> None:
    cfg = parse_config({"models": {"victim": "a", "others": ["b", "c"]},
                        "attack": [{"name": "pgd", "epsilons": ["4/255"],
                                    "surrogates": ["a", "b"]},
                                   {"name": "pgd", "epsilons": ["4/255"]}]})
    assert cfg.attacks[0].key == "pgd-linf-ens-a+b" and cfg.attacks[1].key == "pgd-linf"
    single = parse_config({"models": {"victim": "a", "others": ["b"]},
                           "attack": [{"name": "pgd", "epsilons": ["4/255"],
                                       "surrogates": ["b"]}]})
    assert single.attacks[0].key == "pgd-linf-ens-b"  # one other model as the source
    for bad in (["a"], ["a", "zzz"], ["a", "a"]):
        with pytest.raises(ValueError, match=r"attack\[0\]\.surrogates: needs one model other"):
            parse_config({"models": {"victim": "a", "others": ["b"]},
                          "attack": [{"name": "pgd", "epsilons": ["4/255"],
                                      "surrogates": bad}]})


def test_all_sources_expands_to_every_model_and_leave_one_out() -> None:
    cfg = parse_config({"models": {"victim": "a", "others": ["b", "c"]},
                        "attack": [{"name": "pgd", "epsilons": ["4/255"], "all_sources": True}]})
    assert cfg.attacks[0].sources("a", ("b", "c")) == [
        (), ("b",), ("c",), ("b", "c"), ("a", "c"), ("a", "b")]
    with pytest.raises(ValueError, match=r"attack\[0\]\.all_sources: needs models.others"):
        parse_config({"attack": [{"name": "pgd", "epsilons": ["4/255"], "all_sources": True}]})


@pytest.mark.parametrize(("fusion", "message"), [
    ({"models": ["a"]}, r"fusion\[0\]\.models: needs >= 2 different models"),
    ({"models": ["a", "zzz"]}, r"fusion\[0\]\.models"),
    ({"models": ["a", "b"], "attack": "square"}, r"fusion\[0\]: attack 'square' is score-based"),
    ({"models": ["a", "b"], "goal": "untargeted"}, r"fusion\[0\]\.goal"),
    ({"models": ["a", "b"], "epsilons": [3]}, r"fusion\[0\]\.epsilons\[0\]"),
])
def test_bad_fusions_name_the_key(fusion: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_config({"models": {"victim": "a", "others": ["b"]}, "fusion": [fusion]})


@pytest.mark.parametrize(("detector", "message"), [
    ({"name": "lstm"}, "detector[0].name: 'lstm' is not one of"),
    ({"name": "squeeze", "options": {"colour": 1}}, "detector[0].options: unknown option"),
    ({"name": "ocsvm", "variants": ["M-cosine"]}, "trajectory only"),
    ({"name": "trajectory", "attacks": ["fgsm"]}, "detector[0].attacks: 'fgsm'"),
    ({"name": "gallery", "fpr": 1.5}, "detector[0].fpr"),
    ({"name": "gallery", "samples": 4}, "detector[0].samples"),
    ({"name": "gallery", "wobble": 1}, "unknown key detector[0].wobble"),
    ({"name": "gallery", "full_budget": "yes"}, "detector[0].full_budget: must be true or false"),
    ({"options": {}}, "missing required key name"),
])
def test_bad_detectors_name_the_key(detector: dict, message: str) -> None:
    doc = {"identification": {"enabled": True}, "detector": [detector]}
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(doc)


def test_detectors_need_identification_and_round_trip_through_toml() -> None:
    from facerobust.eval.commands import config_to_toml
    from facerobust.eval.config import tomllib

    with pytest.raises(ValueError, match="enable \\[identification\\]"):
        parse_config({"detector": [{"name": "gallery"}]})
    cfg = load_config(EXAMPLES / "detectors.toml")
    assert [d.name for d in cfg.detectors] == ["trajectory", "squeeze", "ocsvm", "iforest",
                                               "gallery"]
    assert cfg.detectors[0].variant_list == ("C-l2", "C-cosine", "M-l2", "M-cosine")
    assert parse_config(tomllib.loads(config_to_toml(cfg))).detectors == cfg.detectors
