"""The Ray executor: a tiny audit (verification and identification attacks, the minimal
search, a defense, fusion and detectors, a detector's variants) on a local Ray cluster (2 CPUs)
gives the local executor's results.json (timings aside) with units split into shards, writes
the same files, and a rerun reuses finished units and shards."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from facerobust import models
from facerobust.cli import main
from facerobust.cli.demo import embedded_dataset
from facerobust.eval.config import parse_config
from facerobust.eval.results import RUN_SPECIFIC_KEYS, without_keys
from tests.helpers.models import PooledPixels, TinyResNet
from tests.helpers.tiny_audit import CONFIG, trajectory_config

# differ between any two runs, or say which executor ran
VOLATILE = RUN_SPECIFIC_KEYS | {"config_fingerprint", "executor"}



def _files(out: Path) -> set[str]:
    skip = {"audit.log", "run.lock"}
    return {p.relative_to(out).as_posix() for p in out.rglob("*")
            if p.is_file() and p.name not in skip}


@pytest.mark.parametrize(("executor", "message"), [
    ("spark", r"run\.executor: 'spark' is not one of local, ray"),
    (2, r"run\.executor: must be a string"),
])
def test_executor_key_is_validated(executor: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_config({"run": {"executor": executor}})
    assert parse_config({"run": {"executor": "ray"}}).run.executor == "ray"
    assert parse_config({}).run.executor == "local"


def test_address_needs_the_ray_executor(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "a.toml"
    config.write_text(CONFIG.format(root=embedded_dataset()))
    code = main(["audit", str(config), "--out", str(tmp_path / "o"), "--address", "h:1"])
    assert code == 2
    assert "--address needs --executor ray" in capsys.readouterr().err


def test_ray_executor_without_ray_says_how_to_install(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    config = tmp_path / "a.toml"
    config.write_text(CONFIG.format(root=embedded_dataset()))
    code = main(["audit", str(config), "--out", str(tmp_path / "o"), "--executor", "ray"])
    assert code == 2
    err = capsys.readouterr().err
    assert 'run.executor = "ray" needs the ray package' in err and "facerobust[scale]" in err
    assert not (tmp_path / "o" / "units").exists()  # stopped before any work


def kill_at_shard(monkeypatch: pytest.MonkeyPatch, unit: str, index: int) -> list[bool]:
    """Make the local executor stop (as if killed) when it reaches shard ``index`` of
    ``unit``; set the returned flag's item to False to let runs through again."""
    from facerobust.eval.attack_unit import AttackShards

    killing, real = [True], AttackShards.run

    def run(self: AttackShards, i: int) -> Any:
        if killing[0] and self.key == unit and i == index:
            raise KeyboardInterrupt
        return real(self, i)

    monkeypatch.setattr(AttackShards, "run", run)
    return killing


@pytest.mark.slow
def test_ray_run_equals_local_run_and_resumes(tmp_path: Path, ray_cluster: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # patched in the driver only: the models travel to the workers inside the experiment
    monkeypatch.setattr(models, "load", lambda name, device=None: PooledPixels())
    config = tmp_path / "tiny.toml"  # shards of 3: attack units of 8 samples are 3 Ray tasks
    config.write_text(CONFIG.format(root=embedded_dataset()).replace(
        "batch_size = 8", "batch_size = 8\nshard_size = 3"))
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert main(["audit", str(config), "--out", str(local), "--no-progress"]) == 0
    assert main(["audit", str(config), "--out", str(remote), "--no-progress",
                 "--executor", "ray"]) == 0
    first = json.loads((remote / "results.json").read_text())
    assert first["config"]["run"]["executor"] == "ray"
    assert len(first["attacks"]) == 4 and first["minimal"] is not None
    assert len(first["defenses"]) == 1  # identification heads shipped with the experiment
    assert [a["n"] for a in first["attacks"] if a["goal"] == "untargeted"] == [8]
    local_doc = json.loads((local / "results.json").read_text())
    assert without_keys(first, VOLATILE) == without_keys(local_doc, VOLATILE)
    assert _files(remote) == _files(local)  # example grids written by the driver
    assert any(p.startswith("examples/") for p in _files(remote))

    # resume: a local run killed in the third shard of a unit, finished on Ray, reuses the
    # finished units and that unit's two finished shards
    unit = "attack-pooled-pgd-linf-untargeted"
    killing = kill_at_shard(monkeypatch, unit, 2)
    killed = tmp_path / "killed"
    assert main(["audit", str(config), "--out", str(killed), "--no-progress"]) == 130
    killing[0] = False
    assert len(list((killed / "tensors").glob(f"{unit}.shard-*"))) == 2
    assert main(["audit", str(config), "--out", str(killed), "--no-progress",
                 "--executor", "ray"]) == 0
    log = (killed / "audit.log").read_text()
    assert "8 units, 5 already done" in log
    assert f"{unit}: reusing 2 of 3 finished shards" in log
    resumed = json.loads((killed / "results.json").read_text())
    assert without_keys(resumed, VOLATILE) == without_keys(local_doc, VOLATILE)
    assert _files(killed) == _files(local)


# a fusion and two detectors sharing one adversarial set, beside the tiny audit's units
EVERY_KIND = """
[[fusion]]
models = ["pooled", "pooled-2"]
epsilons = ["4/255"]
steps = 2
goal = "impersonation"
samples = 5
""" + "".join(f"""
[[detector]]
name = "{name}"
attacks = ["bim", "cw"]
samples = 24
steps = 2
cw_steps = 3
adaptive_samples = 4
adaptive_steps = 2
adaptive_epsilons = ["4/255"]
adaptive_weights = [1.0]
""" for name in ("squeeze", "gallery"))


@pytest.mark.slow
def test_every_unit_kind_sharded_on_ray_equals_local(tmp_path: Path, ray_cluster: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "load", lambda name, device=None: PooledPixels(
        8 if name == "pooled" else 4))
    config = tmp_path / "kinds.toml"  # shards of 3: the defense is 3 Ray tasks, the fusion 2,
    # the detectors' adversarial set (24 probes) 8, computed once for both detectors
    text = CONFIG.format(root=embedded_dataset()).replace("batch_size = 8",
                                                          "batch_size = 8\nshard_size = 3")
    # the attack and minimal units are the test above's: only the defense is kept
    text = text[:text.index("[[attack]]")] + text[text.index("[[defense]]"):]
    config.write_text(text + EVERY_KIND)
    local, remote, doc = _local_and_ray(config, tmp_path)
    assert _files(remote) == _files(local)  # fitted detectors written by the driver
    defense, fusion = doc["defenses"][0], doc["fusions"][0]
    assert defense["n_attacked"] == 8 and fusion["n_attacked"] == 5
    # every shard's samples counted once in the merged rates
    assert {r["n"] for c in ("undefended", "naive", "adaptive", "worst_case")
            for r in defense[c]} == {8}
    assert {r["n"] for r in fusion["adaptive"] + fusion["from_member"]["pooled-2"]} == {5}
    assert [len(d["results"]) for d in doc["detectors"]] == [1, 1]
    log = (remote / "audit.log").read_text()
    assert log.count("computed detection-data-") == 1  # once, shared by both detectors
    assert len(list((remote / "tensors").glob("detection-data-*"))) == 1
    assert not list((remote / "tensors").glob("*.shard-*"))  # parts dropped once merged


def _local_and_ray(config: Path, tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    """``config`` audited locally and on Ray: both run folders and the Ray results, checked
    equal to the local ones but for timings."""
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert main(["audit", str(config), "--out", str(local), "--no-progress"]) == 0
    assert main(["audit", str(config), "--out", str(remote), "--no-progress",
                 "--executor", "ray"]) == 0
    doc = json.loads((remote / "results.json").read_text())
    local_doc = json.loads((local / "results.json").read_text())
    assert without_keys(doc, VOLATILE) == without_keys(local_doc, VOLATILE)
    return local, remote, doc


@pytest.mark.slow
def test_detector_variants_are_ray_tasks_equal_to_local_and_resume(
        tmp_path: Path, ray_cluster: Any, monkeypatch: pytest.MonkeyPatch,
        one_thread: None) -> None:  # one thread like the workers: files equal to the bit
    from facerobust.eval.detection import DetectorShards

    monkeypatch.setattr(models, "load", lambda name, device=None: TinyResNet(
        seed=1 if name == "pooled" else 2))
    config = tmp_path / "trajectory.toml"  # one detector unit of two variants
    config.write_text(trajectory_config(embedded_dataset()))
    unit = "detector-0-trajectory"
    local, remote, doc = _local_and_ray(config, tmp_path)
    assert len(doc["detectors"][0]["results"]) == 2
    assert f"{unit}: 2 shard tasks submitted" in (remote / "audit.log").read_text()
    detectors = sorted(p for p in _files(local) if p.startswith("detectors/"))
    assert detectors == [f"detectors/{unit}-C-l2.pt", f"detectors/{unit}-M-cosine.pt"]
    assert _files(remote) == _files(local)  # the fitted detectors, written by the driver
    for rel in detectors:
        assert (remote / rel).read_bytes() == (local / rel).read_bytes()

    # a local run killed in the second variant, finished on Ray: one task, for that variant
    killing, real = [True], DetectorShards.run

    def run(self: DetectorShards, index: int) -> Any:
        if killing[0] and index == 1:
            raise KeyboardInterrupt
        return real(self, index)

    monkeypatch.setattr(DetectorShards, "run", run)
    killed = tmp_path / "killed"
    assert main(["audit", str(config), "--out", str(killed), "--no-progress"]) == 130
    killing[0] = False
    assert main(["audit", str(config), "--out", str(killed), "--no-progress",
                 "--executor", "ray"]) == 0
    log = (killed / "audit.log").read_text()
    assert f"{unit}: reusing 1 of 2 finished shards" in log
    assert f"{unit}: 1 shard tasks submitted" in log
    resumed = json.loads((killed / "results.json").read_text())
    assert without_keys(resumed, VOLATILE) == without_keys(doc, VOLATILE)
    assert _files(killed) == _files(local)
