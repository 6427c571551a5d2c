"""Your own faces: an identity-folder tree without pairs.txt, end to end (eval-clean, audit)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from facerobust import models
from facerobust.cli import main
from facerobust.data.lfw import LFWPairs, parse_pairs
from tests.helpers.models import PooledPixels

AUDIT = """
[run]
seed = 1
batch_size = 8

[data]
root = "{root}"
clean_pairs_per_fold = 2
attack_pairs = 3

[identification]
enabled = true
identities = 50
images_per_identity = 5
gallery_per_identity = 3
min_images = 5
probes = 4

[models]
victim = "pooled"

[[attack]]
name = "fgsm"
epsilons = ["2/255"]
goals = ["dodging", "untargeted"]
"""


@pytest.fixture(scope="module")
def folders(lfw_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 LFW people with >= 4 images as <root>/<id>/<file>.jpg, renamed, no pairs file, a
    corrupt ``broken.jpg`` in each, plus a single-image identity and an empty folder."""
    root = tmp_path_factory.mktemp("own") / "faces"
    people = sorted((n, f) for n, f in LFWPairs(lfw_root).people().items() if len(f) >= 4)
    for i, (_, files) in enumerate(people[:24]):
        for j, f in enumerate(files[:4]):
            dst = root / f"id{i:03d}" / f"photo_{j}.jpg"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dst)
        (root / f"id{i:03d}" / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "single").mkdir()
    shutil.copyfile(people[30][1][0], root / "single" / "only.jpg")
    (root / "empty").mkdir()
    return root


@pytest.fixture()
def pooled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "load", lambda name, device=None: PooledPixels())


@pytest.mark.data
def test_eval_clean_json_on_identity_folders(folders: Path, pooled: None, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "clean.json"
    code = main(["eval-clean", "--data", str(folders), "--json", "--no-progress",
                 "--limit-pairs", "40", "--out", str(out)])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["layout"] == "folders" and doc["result"]["pairs_file"] == "generated"
    assert doc["n_pairs"] > 0 and 0.0 <= doc["accuracy"] <= 1.0
    assert doc["skipped"] == len(doc["skipped_files"]) >= 1  # corrupt files, by own name
    assert all(s["path"].endswith("broken.jpg") for s in doc["skipped_files"])
    assert all("not a decodable image" in s["reason"] for s in doc["skipped_files"])


@pytest.mark.data
def test_audit_on_identity_folders_writes_the_protocol(folders: Path, pooled: None,
                                                       tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    config = tmp_path / "own.toml"
    config.write_text(AUDIT.format(root=folders))
    out = tmp_path / "run"
    assert main(["audit", str(config), "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err  # the terminal names the first skipped files and the count
    assert "image(s) skipped:" in err and "broken.jpg: not a decodable image" in err
    results = json.loads((out / "results.json").read_text())
    data = results["dataset"]
    assert data["layout"] == "folders" and data["pairs_generated"] and data["name"] == "faces"
    assert data["identification"]["identities"] == 24  # fewer than requested: all usable
    assert any("empty" in w for w in data["warnings"])
    assert sum(data["detectors"].values()) == data["n_images"]
    pairs = parse_pairs(out / "protocol" / "pairs.txt", folders, folders)  # reads back
    assert len(pairs) == 2 * 2 * 10 and all(p.path_a.is_file() for p in pairs)
    ident = json.loads((out / "protocol" / "identification.json").read_text())
    assert len(ident["names"]) == 24
    log = (out / "audit.log").read_text()
    assert "broken.jpg" in log and "only 24 identities" in log
    # rerun from the written protocol: same pairs, same clean figures
    rerun = tmp_path / "rerun.toml"
    rerun.write_text(AUDIT.format(root=folders).replace(
        "attack_pairs = 3", f'attack_pairs = 3\npairs = "{out / "protocol" / "pairs.txt"}"'))
    assert main(["audit", str(rerun), "--out", str(tmp_path / "rerun"), "--no-progress"]) == 0
    again = json.loads((tmp_path / "rerun" / "results.json").read_text())
    assert again["clean"]["pooled"]["correct"] == results["clean"]["pooled"]["correct"]
