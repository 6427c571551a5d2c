"""End-to-end audit on real LFW data: outputs, HTML numbers, and resume after kill -9."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facerobust.eval.results import without_keys

TINY = """
[run]
name = "tiny audit"
seed = 3
batch_size = 8

[data]
dataset = "lfw-gray"
clean_pairs_per_fold = 4
attack_pairs = 4

[models]
victim = "dlib-resnet"
others = ["dlib-resnet-q8"]

[[attack]]
name = "fgsm"
norm = "linf"
epsilons = ["1/255", "4/255"]
goals = ["dodging", "impersonation"]

[[attack]]
name = "pgd"
norm = "linf"
epsilons = ["1/255", "4/255"]
steps = 3
goals = ["dodging", "impersonation"]

[minimal]
enabled = true
attack = "pgd"
norm = "linf"
steps = 3
goal = "dodging"
samples = 4
"""




def _audit_cmd(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "facerobust.cli", "audit", str(config), "--out", str(out),
            "--no-progress"]


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory: pytest.TempPathFactory, lfw_root: Path) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def full_run(tiny_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("full")
    subprocess.run(_audit_cmd(tiny_config, out), check=True, timeout=900,
                   env={**os.environ})
    return out


@pytest.mark.data
@pytest.mark.slow
def test_audit_writes_results_report_tables_and_figures(full_run: Path) -> None:
    results = json.loads((full_run / "results.json").read_text())
    assert results["schema_version"] == 3 and results["kind"] == "audit"
    assert results["command"] == "audit"
    assert results["config"]["run"]["seed"] == 3
    clean = results["clean"]["dlib-resnet"]
    assert clean["n_pairs"] > 60 and clean["accuracy"] > 0.9
    assert len(results["attacks"]) == 4
    for atk in results["attacks"]:
        assert 0 < atk["n"] <= 4
        assert len(atk["success"]) == 2
        for rate in atk["success"]:
            assert rate["n"] == atk["n"] and rate["ci95"][0] <= rate["rate"] <= rate["ci95"][1]
        if atk["attack"] == "pgd":
            assert atk["success"][1]["k"] >= atk["success"][0]["k"]
        assert max(atk["max_perturbation"][0], 0) <= 1 / 255 + 1e-6
        # transfer uses adversarials crafted for each budget: the 4/255 ones use it
        assert atk["max_perturbation"][1] > 3.5 / 255
        assert atk["transfer_adversarials"] == "full budget"
        q8 = atk["transfer"]["dlib-resnet-q8"]
        assert q8["success"][0]["n"] == atk["n"] - q8["clean_success"]["k"]
    pgd_dodge = next(a for a in results["attacks"] if a["key"] == "pgd-linf-dodging")
    assert pgd_dodge["success"][-1]["rate"] == 1.0, "PGD at 4/255 must dodge dlib on every probe"
    assert "4 matched + 4 mismatched pairs of every fold" in results["dataset"]["protocol"]
    assert results["minimal"]["n"] > 0
    html = (full_run / "report.html").read_text()
    for sentence in results["summary"]["sentences"]:
        assert sentence in html
    for name in ["tables/clean.csv", "tables/attacks.csv", "figures/transfer.png",
                 "examples/attack-dlib-resnet-pgd-linf-dodging.png", "audit.log"]:
        assert (full_run / name).is_file(), name


@pytest.mark.data
@pytest.mark.slow
def test_killed_run_resumes_to_identical_results(full_run: Path, tiny_config: Path,
                                                 tmp_path: Path) -> None:
    out = tmp_path / "killed"
    proc = subprocess.Popen(_audit_cmd(tiny_config, out), start_new_session=True)
    units = out / "units"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if units.is_dir() and len(list(units.glob("*.json"))) >= 3:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(units.glob("*.json")))
    assert not (out / "results.json").exists()
    subprocess.run(_audit_cmd(tiny_config, out), check=True, timeout=900)
    log = (out / "audit.log").read_text()
    assert f"{done_before} already done" in log
    resumed = json.loads((out / "results.json").read_text())
    uninterrupted = json.loads((full_run / "results.json").read_text())
    assert without_keys(resumed) == without_keys(uninterrupted)


@pytest.mark.data
def test_edited_config_reuses_units_whose_settings_did_not_change(full_run: Path,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "edited"
    shutil.copytree(full_run, out)
    edited = tmp_path / "edited.toml"
    edited.write_text(TINY.replace('name = "tiny audit"', 'name = "renamed"').replace(
        'epsilons = ["1/255", "4/255"]\nsteps = 3', 'epsilons = ["2/255"]\nsteps = 3'))
    proc = subprocess.run(_audit_cmd(edited, out), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    log = (out / "audit.log").read_text()
    assert "7 units, 5 already done" in log  # only the two PGD units changed
    assert "attack-dlib-resnet-pgd-linf-dodging, attack-dlib-resnet-pgd-linf-impersonation" in log
    results = json.loads((out / "results.json").read_text())
    old = json.loads((full_run / "results.json").read_text())
    assert results["config"]["run"]["name"] == "renamed"
    # FGSM reused as is
    assert without_keys(results["attacks"][0]) == without_keys(old["attacks"][0])
    assert [a["epsilon_labels"] for a in results["attacks"][2:]] == [["2/255"], ["2/255"]]


@pytest.mark.data
def test_second_audit_into_a_busy_folder_stops_at_once(tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "run.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                              "started": "now"}))
    tic = time.time()
    proc = subprocess.run(_audit_cmd(tiny_config, out), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and time.time() - tic < 60
    assert "in use by another facerobust run" in proc.stderr
    assert "Traceback" not in proc.stderr and not (out / "units").exists()


def test_missing_dataset_says_how_to_get_it(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from facerobust.cli import main

    config = tmp_path / "c.toml"
    config.write_text(TINY.replace('dataset = "lfw-gray"', 'dataset = "no-such-set"'))
    monkeypatch.setenv("FACEROBUST_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    assert main(["audit", str(config), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
