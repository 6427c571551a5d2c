from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facerobust.eval.store import RunStore


def test_units_and_tensors_round_trip(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run", "abc")
    assert not store.has("clean-m")
    store.save("clean-m", {"accuracy": 0.9})
    store.save_tensors("emb-m", {"emb": torch.arange(6.0).view(2, 3)})
    again = RunStore(tmp_path / "run", "abc")
    assert again.has("clean-m") and again.load("clean-m") == {"accuracy": 0.9}
    assert torch.equal(again.load_tensors("emb-m")["emb"], torch.arange(6.0).view(2, 3))
    assert not list((tmp_path / "run").rglob("*.tmp")), "no temp files left behind"


def test_refuses_a_different_configuration(tmp_path: Path) -> None:
    RunStore(tmp_path, "first")
    with pytest.raises(ValueError, match="different configuration"):
        RunStore(tmp_path, "second")


def test_rejects_unsafe_keys(tmp_path: Path) -> None:
    store = RunStore(tmp_path, "x")
    with pytest.raises(ValueError, match="unit key"):
        store.save("../escape", {})
