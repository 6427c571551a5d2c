"""Study commands as one-unit runs: a finished study with the same settings is reused (nothing
recomputed), changed settings recompute, a foreign results.json is refused without --force."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from facerobust import models
from facerobust.cli import compare as compare_cli
from facerobust.cli import main
from facerobust.cli import train_head as train_head_cli
from facerobust.eval.results_file import KindUnit
from facerobust.eval.results_study import AdvTrainResult, JudgedCondition, JudgedHardening
from facerobust.eval.stats import Rate
from facerobust.eval.study_run import RunOutput, run_study
from tests.helpers.models import PooledPixels
from tests.helpers.synthetic_lfw import synthetic_lfw  # noqa: F401 (fixture)


@dataclass(frozen=True)
class Toy(KindUnit):
    KIND: ClassVar[str] = "comparison"  # any registered kind; the test reads it back typed
    value: int


def fail() -> Toy:
    raise AssertionError("recomputed a finished study")


def test_run_study_reuses_recomputes_and_refuses(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = RunOutput(tmp_path / "run", tmp_path / "run" / "results.json")
    assert run_study(out, Toy, {"n": 1}, lambda: Toy(7)).result == Toy(7)
    first = out.results.read_bytes()
    again = run_study(out, Toy, {"n": 1}, fail)
    assert again.reused and again.result == Toy(7) and out.results.read_bytes() == first
    assert "reused the finished comparison run" in capsys.readouterr().err
    changed = run_study(out, Toy, {"n": 2}, lambda: Toy(8))
    assert not changed.reused and json.loads(out.results.read_text())["value"] == 8
    assert "settings changed" in capsys.readouterr().err
    model = tmp_path / "run" / "model.pt"  # a model file the study wrote must still exist
    run_study(out, Toy, {"n": 2}, lambda: Toy(9), files=(model,))
    assert "model.pt is missing: recomputing" in capsys.readouterr().err
    foreign = RunOutput(tmp_path / "mine", tmp_path / "mine" / "results.json")
    foreign.folder.mkdir()
    foreign.results.write_text('{"my": "numbers"}')
    with pytest.raises(ValueError, match="not from a facerobust run; .* --force"):
        run_study(foreign, Toy, {}, lambda: Toy(1))
    assert foreign.results.read_text() == '{"my": "numbers"}'
    assert run_study(foreign, Toy, {}, lambda: Toy(1), force=True).result == Toy(1)


def test_adv_train_result_round_trips() -> None:
    rate = Rate(3, 8)
    judged = JudgedHardening(1 / 255, 3, {"eps": 1 / 255},
                             {"clean": JudgedCondition("clean", rate, rate)})
    result = AdvTrainResult("m", ["a"], ["b"], [], {"epochs": 1, "eps": 0.01}, judged)
    assert AdvTrainResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_compare_twice_reuses_and_a_changed_option_recomputes(
        synthetic_lfw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(models, "load", lambda name, device=None: PooledPixels())
    out = tmp_path / "cmp"
    argv = ["compare", "--models", "a,b", "--data", str(synthetic_lfw), "--limit-pairs", "0",
            "--attack-pairs", "4", "--eps", "2/255", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    first = (out / "results.json").read_bytes()
    (out / "report.html").unlink()
    compute = compare_cli.compare_models
    monkeypatch.setattr(compare_cli, "compare_models", lambda *a, **k: fail())
    capsys.readouterr()
    assert main(argv) == 0  # no --force needed for our own finished run
    assert "reused the finished comparison run" in capsys.readouterr().err
    assert (out / "results.json").read_bytes() == first and (out / "report.html").is_file()
    monkeypatch.setattr(compare_cli, "compare_models", compute)
    changed = [("3" if a == "4" else a) for a in argv]  # --attack-pairs 3
    assert main(changed) == 0
    assert "settings changed" in capsys.readouterr().err
    assert json.loads((out / "results.json").read_text())["n_attacked"] == 3


def test_train_head_twice_reuses_and_needs_its_head_file(
        synthetic_lfw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(models, "load", lambda name, device=None: PooledPixels())
    out = tmp_path / "head"
    argv = ["train-head", "--model", "pooled", "--data", str(synthetic_lfw), "--identities",
            "4", "--images-per-identity", "4", "--gallery-per-identity", "2", "--min-images",
            "4", "--epochs", "5", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    first = (out / "results.json").read_bytes()
    train = train_head_cli.train_identification_head
    monkeypatch.setattr(train_head_cli, "train_identification_head", lambda **k: fail())
    capsys.readouterr()
    assert main(argv) == 0
    assert "reused the finished train-head run" in capsys.readouterr().err
    assert (out / "results.json").read_bytes() == first
    (out / "head.pt").unlink()  # a reuse needs the model file the study wrote
    monkeypatch.setattr(train_head_cli, "train_identification_head", train)
    assert main(argv) == 0 and (out / "head.pt").is_file()
    assert "head.pt is missing: recomputing" in capsys.readouterr().err


def test_a_foreign_results_json_is_refused_without_force(
        synthetic_lfw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(models, "load", lambda name, device=None: PooledPixels())
    out = tmp_path / "mine"
    out.mkdir()
    (out / "results.json").write_text('{"accuracy": 0.99}')
    argv = ["compare", "--models", "a", "--data", str(synthetic_lfw), "--limit-pairs", "0",
            "--attack-pairs", "2", "--eps", "2/255", "--out", str(out), "--no-progress"]
    assert main(argv) == 2
    assert "not from a facerobust run" in capsys.readouterr().err
    assert (out / "results.json").read_text() == '{"accuracy": 0.99}'
    assert main([*argv, "--force"]) == 0
    assert json.loads((out / "results.json").read_text())["kind"] == "comparison"
