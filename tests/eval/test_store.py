from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
import torch

from facerobust.eval.store import RunLock, RunStore, prepare_output_folder


def test_units_and_tensors_round_trip_under_their_fingerprint(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    assert not store.has("clean-m", "fp1")
    store.save("clean-m", "fp1", {"accuracy": 0.9})
    store.save_tensors("emb-m", "fp1", {"emb": torch.arange(6.0).view(2, 3)})
    again = RunStore(tmp_path / "run")
    assert again.has("clean-m", "fp1") and again.load("clean-m") == {"accuracy": 0.9}
    assert not again.has("clean-m", "fp2")  # its settings changed: recompute
    assert torch.equal(again.load_tensors("emb-m", "fp1")["emb"], torch.arange(6.0).view(2, 3))
    assert again.load_tensors("emb-m", "fp2") is None
    assert not list((tmp_path / "run").rglob("*.tmp")), "no temp files left behind"


def test_damaged_files_are_named_and_recomputed(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    store = RunStore(tmp_path)
    store.save("clean-m", "fp", {"accuracy": 0.9})
    store.save_tensors("emb-m", "fp", {"emb": torch.zeros(3)})
    unit = tmp_path / "units" / "clean-m.json"
    unit.write_text(unit.read_text()[:20])  # truncated
    tensor = tmp_path / "tensors" / "emb-m-fp.pt"
    tensor.write_bytes(tensor.read_bytes()[:50])
    assert not store.has("clean-m", "fp")
    assert store.load_tensors("emb-m", "fp") is None
    assert "damaged unit file" in caplog.text and "clean-m.json" in caplog.text
    assert "damaged tensor file" in caplog.text and "emb-m-fp.pt" in caplog.text
    with pytest.raises(ValueError, match="unit clean-m is missing or damaged"):
        store.load("clean-m")


def test_rejects_unsafe_keys(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    for key in ("a b", "x\\y", "", "k\x00"):
        with pytest.raises(ValueError, match="unit key"):
            store.save(key, "fp", {})
    # a model spec path in a key ("/") is one file name inside the run folder, never a path
    store.save("../escape", "fp", {"ok": 1})
    assert store.load("../escape") == {"ok": 1}
    assert [p.name for p in (tmp_path / "run" / "units").iterdir()] == ["..%2Fescape.json"]
    assert not (tmp_path / "escape.json").exists()


def test_run_lock_is_exclusive_and_stale_locks_are_taken_over(tmp_path: Path) -> None:
    first = RunLock(tmp_path)
    first.acquire()
    holder = json.loads((tmp_path / "run.lock").read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    with pytest.raises(ValueError, match=rf"in use by another facerobust run \(pid {os.getpid()}"):
        RunLock(tmp_path).acquire()
    first.release()
    assert not (tmp_path / "run.lock").exists()
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / "run.lock").write_text(json.dumps(
        {"pid": gone.pid, "host": socket.gethostname(), "started": "earlier"}))
    second = RunLock(tmp_path)
    second.acquire()  # the holder is dead: taken over
    assert json.loads((tmp_path / "run.lock").read_text())["pid"] == os.getpid()
    second.release()
    (tmp_path / "run.lock").write_text("{trunc")
    RunLock(tmp_path).acquire()  # a damaged lock file is named in the log and replaced


def test_output_folder_checked_before_work(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        prepare_output_folder(a_file)
    with pytest.raises(ValueError, match="cannot be written"):
        prepare_output_folder(a_file / "sub")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "results.json").write_text('{"mine": true}')
    with pytest.raises(ValueError, match="not from a facerobust run; .* --force"):
        prepare_output_folder(foreign)
    assert prepare_output_folder(foreign, force=True) == foreign
    assert json.loads((foreign / "results.json").read_text()) == {"mine": True}
    RunStore(tmp_path / "ours")
    (tmp_path / "ours" / "results.json").write_text("{}")
    prepare_output_folder(tmp_path / "ours")  # our own run folder: fine
