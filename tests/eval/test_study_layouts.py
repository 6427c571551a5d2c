"""The study commands on any dataset layout (one opener, the core pair sampler, generated
protocols), the one --out policy and the one default dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from facerobust import models
from facerobust.cli import build_parser, main
from facerobust.data.resolve import default_dataset, embedded_dataset, resolve_dataset
from facerobust.eval.datasource import DataSource, impostor_pairs
from facerobust.eval.results_study import load_comparison, load_defensive
from facerobust.report.kinds import load_result
from tests.helpers.models import PooledPixels
from tests.helpers.synthetic_lfw import make_lfw, synthetic_lfw  # noqa: F401 (fixture)


@pytest.fixture()
def folders(synthetic_lfw: Path, tmp_path: Path,  # noqa: F811
            monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``folders``-layout dataset (``<identity>/<image>``, no pairs.txt), 24 identities of
    4 images, chips faked; models are a pooled-pixels stand-in."""
    monkeypatch.setattr(models, "load", lambda name, device=None: PooledPixels())
    return make_lfw(tmp_path / "lfw24", identities=24) / "images"


def test_compare_over_a_folders_dataset_uses_a_generated_protocol(
        folders: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cmp"
    argv = ["compare", "--models", "a,b", "--data", str(folders), "--layout", "folders",
            "--limit-pairs", "40", "--attack-pairs", "6", "--eps", "8/255", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 0
    res = load_comparison(out / "results.json")
    assert res.pairs_file == "generated" and res.dataset == str(folders)
    assert res.n_pairs == 40 and res.models[0].correct.n == 40  # 2 per fold and class
    assert load_result(out / "results.json").kind.name == "comparison"
    assert (out / "report.html").is_file()


@pytest.mark.usefixtures("one_thread")
def test_defensive_distill_over_a_folders_dataset(folders: Path, tmp_path: Path) -> None:
    out = tmp_path / "dd"
    assert main(["defensive-distill", "--model", "pooled", "--data", str(folders),
                 "--identities", "4", "--images-per-identity", "4",
                 "--gallery-per-identity", "2", "--steps", "1", "--cw-steps", "2",
                 "--probes", "4", "--head-epochs", "20", "--out", str(out),
                 "--no-progress"]) == 0
    res = load_defensive(out / "results.json")
    assert res.dataset == str(folders) and res.n_train == 8 and res.n_probe == 8


def test_gate_pairs_come_from_any_layout(synthetic_lfw: Path, tmp_path: Path) -> None:  # noqa: F811
    lfw = DataSource(data=synthetic_lfw, dataset="lfw").open()
    drawn = impostor_pairs(lfw, 5, seed=3)
    assert len(drawn) == 5 and all(p.victim == p.victim_photo.parent.name for p in drawn)
    assert drawn == impostor_pairs(lfw, 5, seed=3)  # seeded
    # a flat folder with a listing: identities come from the listing, not from folder names
    flat = tmp_path / "flat"
    flat.mkdir()
    lines = []
    for name, files in lfw.people.items():
        for f in files:
            shutil.copy(f, flat / f"{name}-{f.name}")
            lines.append(f"{name}-{f.name} id{name[-2:]}")
    (flat / "identities.txt").write_text("\n".join(lines) + "\n")
    big = make_lfw(tmp_path / "big", identities=24)
    for name in sorted(p.name for p in (big / "images").iterdir())[12:]:
        for f in sorted((big / "images" / name).iterdir()):
            shutil.copy(f, flat / f"{name}-{f.name}")
            (flat / "identities.txt").open("a").write(f"{name}-{f.name} id{name[-2:]}\n")
    listed = DataSource(data=flat, dataset="flat", layout="listing").open()
    pairs = impostor_pairs(listed, 4, seed=0)
    assert len(pairs) == 4 and all(p.victim.startswith("id") for p in pairs)
    assert all(p.photo.parent == flat for p in pairs)


def test_out_policy_refuses_a_finished_result_without_force(
        folders: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text("{}")
    for argv in (["compare", "--models", "a"], ["defensive-distill"], ["adv-train"],
                 ["train-head", "--model", "a"], ["eval-clean"],
                 ["attack-gate", "http://127.0.0.1:9", "--key", "k", "--admin-key", "a"],
                 ["gate-photo-attack", "http://127.0.0.1:9", "--key", "k", "--admin-key", "a"],
                 ["distill"]):
        assert main([*argv, "--data", str(folders), "--out", str(out)]) == 2, argv
        assert "not from a facerobust run" in capsys.readouterr().err, argv
    assert (out / "results.json").read_text() == "{}"  # untouched
    (tmp_path / "file").write_text("")
    assert main(["compare", "--models", "a", "--data", str(folders), "--out",
                 str(tmp_path / "file")]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err


def test_one_default_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FACEROBUST_DATA", raising=False)
    assert default_dataset() == "lfw-demo"  # no LFW copy: the embedded subset
    assert resolve_dataset("lfw-demo") == embedded_dataset()
    assert (embedded_dataset() / "pairs.txt").is_file()
    (tmp_path / "data" / "lfw-gray").mkdir(parents=True)
    monkeypatch.setenv("FACEROBUST_DATA", str(tmp_path / "data"))
    assert default_dataset() == "lfw"  # an LFW copy found: full LFW
    for command in ("compare", "distill", "defensive-distill", "adv-train", "train-head",
                    "eval-clean", "attack-gate", "gate-photo-attack"):
        assert _default_of(command) == "lfw", command
    assert json.dumps(DataSource().dataset) == '"lfw"'


def _default_of(command: str) -> str:
    """``--dataset``'s default of ``command`` in a parser built now."""
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return str(sub.choices[command].get_default("dataset"))  # type: ignore[index]
