"""One identification setup: a head from train-head is the audit's, attack's and defend's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facerobust import models
from facerobust.cli import main
from tests.helpers.models import PooledPixels

SPLIT = ["--identities", "4", "--images-per-identity", "4", "--gallery-per-identity", "2",
         "--min-images", "4"]
AUDIT = """
[run]
seed = 0
batch_size = 8

[data]
dataset = "lfw-gray"
root = "{root}"
clean_pairs_per_fold = 2

[identification]
enabled = true
identities = 4
images_per_identity = 4
gallery_per_identity = 2
min_images = 4
probes = 4

[models]
victim = "{victim}"

[[defense]]
spec = "bitdepth:bits=4"
goal = "untargeted"
epsilons = ["8/255"]
steps = 2
samples = 4
"""


@pytest.fixture()
def pooled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "load", lambda name, device=None: PooledPixels())


@pytest.mark.data
def test_train_head_split_and_head_are_the_audits(pooled: None, lfw_root: Path,
                                                  tmp_path: Path) -> None:
    head = tmp_path / "head.pt"
    assert main(["train-head", "--model", "pooled", "--data", str(lfw_root), *SPLIT,
                 "--no-progress", "--out", str(head)]) == 0
    report = json.loads(head.with_suffix(".json").read_text())
    config = tmp_path / "a.toml"
    config.write_text(AUDIT.format(root=lfw_root, victim="pooled"))
    # the same split trained inside the audit ...
    assert main(["audit", str(config), "--out", str(tmp_path / "own"), "--no-progress"]) == 0
    own = json.loads((tmp_path / "own" / "results.json").read_text())
    # ... and the saved head passed with --head give train-head's own held-out top-1
    assert main(["audit", str(config), "--head", str(head), "--out", str(tmp_path / "saved"),
                 "--no-progress"]) == 0
    saved = json.loads((tmp_path / "saved" / "results.json").read_text())
    top1 = report["probe_top1"]
    for run in (own, saved):
        assert run["clean"]["pooled"]["identification_top1"]["n"] == top1["n"]
        assert run["dataset"]["identification"]["split"] == \
            saved["dataset"]["identification"]["split"]
    assert saved["clean"]["pooled"]["identification_top1"] == top1
    assert "head.pt" in saved["dataset"]["identification"]["source"]
    # defenses are judged on the identification goal too
    (defense,) = saved["defenses"]
    assert defense["goal"] == "untargeted" and defense["clean_measure"] == "identification top-1"
    assert defense["clean_undefended"]["k"] == top1["k"]


@pytest.mark.data
def test_a_head_of_another_model_is_refused(pooled: None, lfw_root: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    head = tmp_path / "head.pt"
    assert main(["train-head", "--model", "mobileface", "--data", str(lfw_root), *SPLIT,
                 "--no-progress", "--out", str(head)]) == 0
    code = main(["attack", "--model", "dlib-resnet", "--data", str(lfw_root), "--goal",
                 "untargeted", "--head", str(head), "--out", str(tmp_path / "o"),
                 "--no-progress"])
    assert code == 2
    assert "trained on model 'mobileface', not on the victim 'dlib-resnet'" in \
        capsys.readouterr().err
