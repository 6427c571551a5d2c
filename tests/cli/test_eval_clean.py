from __future__ import annotations

import json
from pathlib import Path

import pytest

from facerobust import models
from facerobust.cli import main
from tests.helpers.models import PooledPixels


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    loaded: list[str] = []

    def fake_load(name: str, device=None, **kw):
        loaded.append(name)
        return PooledPixels()

    monkeypatch.setattr(models, "load", fake_load)
    return tmp_path


@pytest.mark.data
def test_eval_clean_json_stdout_is_one_object(env: Path, lfw_root: Path, capsys) -> None:
    out = env / "res" / "clean.json"  # the old --out FILE.json form still works
    code = main(["eval-clean", "--model", "dlib-resnet", "--dataset", "lfw-gray", "--data",
                 str(lfw_root), "--limit-pairs", "20", "--out", str(out), "--json"])
    assert code == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # exactly one JSON document
    assert doc["model"] == "dlib-resnet" and doc["layout"] == "lfw"
    assert doc["kind"] == "eval-clean" and doc["schema_version"] == 3
    assert doc["n_pairs"] + doc["n_pairs_excluded"] == 20
    assert doc["skipped"] == len(doc["skipped_files"])
    figures = doc["result"]["figures"]
    assert figures["correct"]["n"] == figures["n_pairs"] and len(figures["correct"]["ci95"]) == 2
    assert json.loads(out.read_text()) == doc
    assert "aligning" in captured.err  # progress goes to stderr


@pytest.mark.data
def test_eval_clean_table_and_default_out(env: Path, lfw_root: Path, capsys) -> None:
    code = main(["eval-clean", "--dataset", "lfw", "--data", str(lfw_root.parent),
                 "--limit-pairs", "20", "--no-progress"])
    assert code == 0
    captured = capsys.readouterr()
    assert "accuracy (k-fold)" in captured.out and "TAR @ FAR=0.001" in captured.out
    assert "95% CI" in captured.out
    assert captured.err.startswith("saved eval-clean-dlib-resnet-lfw/results.json")
    run = env / "eval-clean-dlib-resnet-lfw"  # the default run folder
    assert (run / "results.json").is_file() and "95% CI" in (run / "report.html").read_text()


def test_eval_clean_missing_dataset_is_a_clean_error(env: Path, capsys,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACEROBUST_DATA", raising=False)
    assert main(["eval-clean", "--dataset", "lfw"]) == 2
    err = capsys.readouterr().err
    assert "facerobust eval-clean: error:" in err and "facerobust data fetch lfw" in err


def test_eval_clean_refuses_a_finished_run_before_any_work(env: Path, capsys) -> None:
    (env / "folder").mkdir()
    (env / "folder" / "results.json").write_text("{}")
    assert main(["eval-clean", "--dataset", "lfw", "--out", str(env / "folder")]) == 2
    assert "not from a facerobust run" in capsys.readouterr().err
    (env / "file").write_text("")
    assert main(["eval-clean", "--dataset", "lfw", "--out", str(env / "file")]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err
