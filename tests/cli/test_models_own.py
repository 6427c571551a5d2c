"""``facerobust models add / list / card / calibrate / remove`` with your own ONNX model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from facerobust import models
from facerobust.cli import main
from tests.helpers.exported import TinyArcFace, export_onnx, write_spec

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture()
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FACEROBUST_MODELS", str(tmp_path / "mine"))
    export_onnx(TinyArcFace().eval(), torch.rand(1, 3, 112, 112), tmp_path / "arc.onnx")
    return write_spec(tmp_path / "arc.toml", model='name = "my-arc"\nformat = "onnx"\n'
                      'file = "arc.onnx"', output='[output]\nmetric = "cosine"\n',
                      extra='[calibration]\nfar = 0.1\n')


def test_add_list_card_load_remove(spec: Path, tmp_path: Path, capsys) -> None:
    spec.write_text(spec.read_text() + 'data = "faces"\n')  # relative to the spec
    assert main(["models", "add", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "added my-arc" in out and "max |torch - onnxruntime|" in out
    registered = tmp_path / "mine" / "my-arc.toml"
    assert (tmp_path / "mine" / "my-arc.onnx").is_file()
    assert 'sha256 = "' in registered.read_text()
    assert f'data = "{tmp_path / "faces"}"' in registered.read_text()
    assert main(["models", "add", str(spec)]) == 2  # the name is taken
    assert "already registered" in capsys.readouterr().err
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "my-arc" in out and "not calibrated" in out
    assert main(["models", "card", "my-arc"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "onnx"
    assert main(["models", "card", str(spec)]) == 0  # a spec file's card, unregistered
    assert json.loads(capsys.readouterr().out)["spec"] == str(spec)
    with pytest.raises(ValueError, match=r"no output\.threshold"):
        models.load("my-arc")  # added, but neither a threshold nor a calibrated card
    copy = tmp_path / "mine" / "my-arc.onnx"
    copy.write_bytes(copy.read_bytes() + b"\0")  # the registered copy is pinned
    with pytest.raises(ValueError, match=r"my-arc\.onnx: sha256 .* differs from the pinned"):
        models.load("my-arc")
    assert main(["models", "remove", "my-arc"]) == 0
    assert not registered.exists() and not (tmp_path / "mine" / "my-arc.onnx").exists()
    assert main(["models", "remove", "my-arc"]) == 2


def test_a_zoo_name_is_refused(spec: Path, capsys) -> None:
    spec.write_text(spec.read_text().replace("my-arc", "dlib-resnet"))
    assert main(["models", "add", str(spec)]) == 2
    assert "is a zoo model" in capsys.readouterr().err


def test_calibrate_writes_the_card_the_model_then_uses(spec: Path, tmp_path: Path,
                                                      capsys) -> None:
    code = main(["models", "calibrate", str(spec), "--dataset", "lfw-demo",
                 "--limit-pairs", "20", "--detector", "hog"])
    assert code == 0, capsys.readouterr().err
    card = json.loads((tmp_path / "arc.card.json").read_text())
    assert card["far"] == 0.1 and card["n_pairs"] > 0 and card["threshold"] > 0
    assert {"accuracy", "auc", "eer", "tar_at_far", "data", "protocol"} <= set(card)
    assert "lfw-demo" in card["data"]
    assert models.load(str(spec)).threshold == card["threshold"]
    assert main(["models", "add", str(spec)]) == 0  # the card travels with the model
    assert models.load("my-arc").threshold == card["threshold"]
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    assert f"threshold {card['threshold']:.4f} @ FAR 0.1" in capsys.readouterr().out


def test_write_spec_helper_round_trips(tmp_path: Path) -> None:
    path = write_spec(tmp_path / "x.toml", model='name = "x"\nformat = "python"\n'
                      'entry = "tests.helpers.exported:TinyArcFace"')
    assert models.load(str(path)).name == "x"


AUDIT = """
[run]
seed = 0
batch_size = 8

[data]
root = "{root}"
clean_pairs_per_fold = 2
attack_pairs = 4
detector = "hog"

[models]
victim = "{victim}"
others = ["{other}"]

[[attack]]
name = "pgd"
epsilons = ["8/255"]
steps = 3
goals = ["dodging"]
"""


def test_audit_takes_spec_files_as_victim_and_transfer_model(spec: Path, tmp_path: Path) -> None:
    other = write_spec(tmp_path / "other.toml", model='name = "py"\nformat = "python"\n'
                       'entry = "tests.helpers.exported:TinyArcFace"')
    text = spec.read_text().replace('metric = "cosine"', 'metric = "cosine"\nthreshold = 0.3')
    spec.write_text(text)
    root = Path(models.__file__).parents[1] / "data" / "demo" / "lfw-demo"
    config = tmp_path / "audit.toml"
    config.write_text(AUDIT.format(root=root, victim=spec, other=other))
    assert main(["audit", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    doc = json.loads((tmp_path / "run" / "results.json").read_text())
    assert str(spec) in json.dumps(doc) and any("%2F" in p.name for p in
                                                 (tmp_path / "run" / "units").iterdir())
