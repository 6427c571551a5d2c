"""Weights are checked against the hashes recorded when they were fetched or converted."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from facerobust.models.fetch import RECORD, WeightsIntegrityError, verified_file


def _package(folder: Path, content: bytes) -> Path:
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "w.bin").write_bytes(content)
    (folder / RECORD).write_text(json.dumps(
        {"files_sha256": {"model/w.bin": hashlib.sha256(content).hexdigest()}}))
    return folder


def test_bit_flip_of_the_same_size_is_caught(tmp_path: Path) -> None:
    folder = _package(tmp_path / "pkg", bytes(range(256)) * 4)
    assert verified_file(folder, "model/w.bin") == folder / "model" / "w.bin"
    data = bytearray((folder / "model" / "w.bin").read_bytes())
    data[100] ^= 0x01
    (folder / "model" / "w.bin").write_bytes(bytes(data))  # same size, new mtime
    with pytest.raises(WeightsIntegrityError, match=r"w.bin: sha256 .* differs from .* "
                                                    r"recorded in .*fetch.json"):
        verified_file(folder, "model/w.bin")


def test_unchanged_files_take_the_fast_path(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import facerobust.models.fetch as fetch

    folder = _package(tmp_path / "pkg", b"weights")
    verified_file(folder, "model/w.bin")
    monkeypatch.setattr(fetch, "sha256_file", lambda p: pytest.fail("re-hashed"))
    verified_file(folder, "model/w.bin")  # size and mtime unchanged: no re-hash


def test_fetched_zoo_weights_damaged_are_refused_and_listed(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    from facerobust.models.fetch import HUMAN_MODELS, package_dir

    real = package_dir(HUMAN_MODELS)
    if real is None:
        pytest.skip("npm-packaged models not fetched (make fetches them)")
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    copy = tmp_path / "cache" / "weights" / "npm" / real.name
    shutil.copytree(real, copy)
    (copy / ".verified.json").unlink(missing_ok=True)
    record = json.loads((copy / RECORD).read_text())
    weights = next(rel for rel in record["files_sha256"] if "mobileface" in rel
                   and rel.endswith(".bin"))
    target = copy / weights
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    from facerobust import models
    from facerobust.cli import main

    with pytest.raises(WeightsIntegrityError, match="mobileface"):
        models.load("mobileface")
    assert main(["models", "list"]) == 0
    out = capsys.readouterr()
    line = next(ln for ln in out.out.splitlines() if ln.split()[:1] == ["mobileface"])
    assert "DAMAGED" in line and "differs from" in out.err


@pytest.mark.slow
def test_converted_dlib_weights_zeroed_layer_is_rebuilt(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    from facerobust.models import dlib_resnet

    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    dat = dlib_resnet.weights_file()
    good = dlib_resnet.load_state_dict(dat)
    (cached,) = list((tmp_path / "cache" / "weights").glob("dlib-resnet-v*.pt"))
    state = torch.load(cached, weights_only=True)
    first = next(iter(state))
    state[first] = torch.zeros_like(state[first])
    torch.save(state, cached)
    os.utime(cached, ns=(1, 1))
    again = dlib_resnet.load_state_dict(dat)
    assert torch.equal(again[first], good[first]) and again[first].abs().sum() > 0
    assert dlib_resnet.cache_entry_intact(cached, full=True)
