from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from facerobust import models
from facerobust.models import dlib_hardened
from facerobust.models.cards import card
from facerobust.models.dlib_hardened import read_hardened, save_hardened, state_sha256

COMMAND = "facerobust models build dlib-resnet-hardened"


@pytest.fixture()
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache and no packaged weights: the model is not built."""
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(dlib_hardened, "PACKAGED", tmp_path / "none.pt")
    return tmp_path


def _pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    tuned = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    tuned.load_state_dict({k: v + 0.01 * torch.randn_like(v)
                           for k, v in base.state_dict().items()})
    return base, tuned


def test_unbuilt_model_names_the_build_command(nowhere: Path) -> None:
    assert "dlib-resnet-hardened" in [s.name for s in models.specs()]
    assert models.weights_path("dlib-resnet-hardened") is None
    with pytest.raises(FileNotFoundError, match=COMMAND):
        models.load("dlib-resnet-hardened")
    with pytest.raises(FileNotFoundError, match=COMMAND):
        dlib_hardened.build()
    c = card("dlib-resnet-hardened")
    assert not c.weights_available and c.measured is None and c.embedding_dim == 128


def test_saved_difference_round_trips_to_float16_precision(tmp_path: Path) -> None:
    base, tuned = _pair()
    path = save_hardened(tmp_path / "h.pt", tuned, base, {"loss": "trades"})
    blob = read_hardened(path)
    assert blob["recipe"] == {"loss": "trades"} and blob["base_sha256"] == state_sha256(base)
    assert all(d.dtype == torch.float16 for d in blob["delta"].values())
    back = {k: v + blob["delta"][k].float() for k, v in base.state_dict().items()}
    for k, v in tuned.state_dict().items():
        assert torch.allclose(back[k], v, atol=1e-5) and not torch.equal(back[k], v)


def test_bad_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=COMMAND):
        read_hardened(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not torch")
    with pytest.raises(ValueError, match="not a readable dlib-resnet-hardened file"):
        read_hardened(junk)
    torch.save({"format": 99}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="rebuild it with"):
        read_hardened(tmp_path / "old.pt")
    base, tuned = _pair()
    with pytest.raises(ValueError, match="different parameters"):
        save_hardened(tmp_path / "x.pt", tuned, nn.Linear(6, 4), {})


def test_card_reads_the_figures_written_beside_the_weights(nowhere: Path) -> None:
    base, tuned = _pair()
    path = save_hardened(dlib_hardened.built_path(), tuned, base, {"loss": "trades"})
    assert models.weights_path("dlib-resnet-hardened") == path
    judged = {"dataset": "lfw-color", "hardened": {"pgd": {"k": 3, "n": 10}}}
    dlib_hardened.card_path(path).write_text(json.dumps(
        {"recipe": {"loss": "trades"}, "training": {"chips": 5}, "judged": judged}))
    c = card("dlib-resnet-hardened")
    assert c.weights_available and c.measured is not None
    assert c.measured["judged"] == judged and c.measured["recipe"] == {"loss": "trades"}


def test_shipped_build_loads_pinned_and_differs_from_dlib() -> None:
    assert dlib_hardened.weights_file() == dlib_hardened.PACKAGED
    dlib_hardened.check_packaged(dlib_hardened.PACKAGED)
    hard, base = models.load("dlib-resnet-hardened"), models.load("dlib-resnet")
    x = torch.rand(2, 3, 150, 150, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        gap = float((hard(x) - base(x)).norm(dim=1).max())
    assert hard.name == "dlib-resnet-hardened" and gap > 1e-3  # fine-tuned, not a copy
    assert card("dlib-resnet-hardened").measured  # the card shipped beside the weights
