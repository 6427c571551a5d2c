"""The one-unit audit commands build their audit config from typed options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from facerobust.eval import commands
from facerobust.eval.commands import (
    AttackCommand,
    CommandRun,
    DefendCommand,
    DetectCommand,
    run_attack,
    run_defend,
    run_detect,
)
from facerobust.eval.config import AuditConfig


@pytest.fixture()
def audits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[AuditConfig, dict[str, Any]]]:
    """Each audit the commands start, instead of running it."""
    seen: list[tuple[AuditConfig, dict[str, Any]]] = []

    def fake(cfg: AuditConfig, out: Path, **kw: Any) -> Path:
        seen.append((cfg, {"out": out, **kw}))
        return out / "results.json"

    monkeypatch.setattr(commands, "run_audit", fake)
    return seen


def test_attack_command_becomes_a_one_attack_audit(tmp_path: Path, audits) -> None:
    run = CommandRun(model="dlib-resnet", out=tmp_path / "a", batch_size=8, seed=2,
                     progress=False, force=True)
    command = AttackCommand(attack="pgd", norm="linf", epsilons=(1 / 255, 2 / 255),
                            goal="targeted", n=7, steps=3, others=("facenet",),
                            surrogates=("dlib-resnet", "faceres"))
    assert run_attack(command, run) == tmp_path / "a" / "results.json"
    ((cfg, kw),) = audits
    assert kw == {"out": tmp_path / "a", "progress": False, "force": True, "command": "attack",
                  "config_text": (tmp_path / "a" / "config.toml").read_text()}
    assert cfg.run.seed == 2 and cfg.run.batch_size == 8
    assert cfg.models.victim == "dlib-resnet" and cfg.models.others == ("facenet", "faceres")
    (attack,) = cfg.attacks
    assert attack.epsilons == (1 / 255, 2 / 255) and attack.goals == ("targeted",)
    assert attack.steps == 3 and attack.surrogates == ("dlib-resnet", "faceres")
    assert cfg.identification.enabled and cfg.identification.probes == 7
    assert cfg.data.attack_pairs == 7 and cfg.data.root == ""


def test_defend_and_detect_commands(tmp_path: Path, audits) -> None:
    run = CommandRun(model="m", out=tmp_path / "d", batch_size=4)
    run_defend(DefendCommand(specs=("jpeg:q=75", "bitdepth:bits=4"), attack="pgd", norm="l2",
                             epsilons=(0.5, 1.0), goal="dodging", n=5, eot=3, direct=False,
                             blackbox_queries=20), run)
    cfg = audits[-1][0]
    assert [d.spec for d in cfg.defenses] == ["jpeg:q=75", "bitdepth:bits=4"]
    assert all(d.eot == 3 and not d.direct and d.blackbox_queries == 20 and d.samples == 5
               and d.epsilons == (0.5, 1.0) for d in cfg.defenses)
    assert not cfg.identification.enabled and cfg.attacks == ()
    run_detect(DetectCommand(detectors=("trajectory", "squeeze"), n=30, identities=12,
                             variants=("C-l2",), fpr=0.1),
               CommandRun(model="m", out=tmp_path / "t", head="h.pt"))
    cfg = audits[-1][0]
    assert [(d.name, d.variants, d.samples, d.fpr) for d in cfg.detectors] == [
        ("trajectory", ("C-l2",), 30, 0.1), ("squeeze", (), 30, 0.1)]
    assert cfg.identification.identities == 12 and cfg.identification.head == "h.pt"


@pytest.mark.parametrize(("make", "message"), [
    (lambda: AttackCommand("pgd", "linf", (), "dodging", 3), "epsilons is empty"),
    (lambda: AttackCommand("pgd", "linf", (0.1,), "dodge", 3), "goal must be one of"),
    (lambda: AttackCommand("pgd", "linf", (0.1,), "dodging", 0), "n must be an integer >= 1"),
    (lambda: DefendCommand((), "pgd", "linf", (0.1,), "dodging", 3), "specs is empty"),
    (lambda: DetectCommand(()), "detectors is empty"),
    (lambda: DetectCommand(("squeeze",), n=0), "n must be an integer >= 1"),
    (lambda: CommandRun(model="", out=Path("o")), "model must be a non-empty name"),
])
def test_command_options_name_the_bad_field(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
