"""Dataset sources: LFW, identity folders, listings; bad inputs named, runs continue."""

from __future__ import annotations

from pathlib import Path

import pytest

from facerobust.data.resolve import resolve_dataset
from facerobust.data.sources import detect_layout, open_dataset


def _tree(root: Path, counts: dict[str, int]) -> Path:
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            (root / name / f"{name}_{i}.jpg").write_bytes(f"{name}-{i}".encode())
    return root


def test_identity_folders_are_detected_and_read(tmp_path: Path) -> None:
    root = _tree(tmp_path / "vgg", {"n001": 3, "n002": 1, "n003": 2})
    (root / "n001" / "notes.txt").write_text("not an image")
    (root / "empty").mkdir()
    ds = open_dataset(root)
    assert ds.layout == "folders" and ds.pairs is None
    assert {k: len(v) for k, v in ds.people.items()} == {"n001": 3, "n002": 1, "n003": 2}
    assert any("empty" in w and "without image files" in w for w in ds.warnings)
    assert resolve_dataset("lfw-gray", root) == root  # --data DIR works on any layout


def test_duplicates_across_identities_are_warned(tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", {"a": 2, "b": 2})
    (root / "b" / "b_0.jpg").write_bytes((root / "a" / "a_1.jpg").read_bytes())
    (warning,) = [w for w in open_dataset(root).warnings if "identical" in w]
    assert "a_1.jpg (a)" in warning and "b_0.jpg (b)" in warning


def test_listing_files_txt_and_csv(tmp_path: Path) -> None:
    root = tmp_path / "celeba"
    root.mkdir()
    for i in range(4):
        (root / f"{i:06d}.jpg").write_bytes(bytes([i]))
    (root / "identity_CelebA.txt").write_text(
        "000000.jpg 7\n000001.jpg 7\n000002.jpg 9\n000003.jpg 9\n000404.jpg 9\n")
    ds = open_dataset(root)
    assert ds.layout == "listing" and ds.people["7"] == [root / "000000.jpg", root / "000001.jpg"]
    assert ds.missing == [root / "000404.jpg"]  # named, the run goes on without it
    csv_root = tmp_path / "csv"
    csv_root.mkdir()
    (csv_root / "x.jpg").write_bytes(b"x")
    (csv_root / "y.jpg").write_bytes(b"y")
    (csv_root / "training_identities.csv").write_text("Image,Class_ID\nx.jpg,p1\ny.jpg,p2\n")
    assert sorted(open_dataset(csv_root).people) == ["p1", "p2"]


@pytest.mark.parametrize(("files", "message"), [
    ({"l.csv": "name,who\nx.jpg,1\n"}, r"l.csv: a CSV listing needs a file column"),
    ({"l.txt": "x.jpg 1 extra\n"}, r"l.txt:1: a listing line is 'file identity', got 3"),
    ({"l.txt": "missing.jpg 1\n"}, r"l.txt: none of its 1 listed files exists"),
    ({"l.txt": "../escape.jpg 1\n"}, r"must be a path inside"),
])
def test_bad_listings_name_the_file(tmp_path: Path, files: dict[str, str], message: str) -> None:
    root = tmp_path / "flat"
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text)
    with pytest.raises(ValueError, match=message):
        open_dataset(root, layout="listing")


def test_unknown_layouts_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot tell the dataset layout"):
        detect_layout(tmp_path)
    with pytest.raises(ValueError, match="layout must be one of"):
        open_dataset(tmp_path, layout="vgg")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no identity with an image file"):
        open_dataset(tmp_path, layout="folders")
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        open_dataset(tmp_path / "nope")


@pytest.mark.parametrize("name", [".", "..", "a/b", ""])
def test_dataset_names_that_are_paths_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dataset name must be a plain name"):
        resolve_dataset(name, tmp_path)
