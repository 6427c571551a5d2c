from __future__ import annotations

from pathlib import Path

import pytest

from facerobust.data import resolve_dataset
from facerobust.data.folders import IdentityFolders


def make_ids(root: Path, counts: dict[str, int]) -> Path:
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            (root / name / f"{i}.jpg").write_bytes(b"x")
    (root / "stray.txt").write_text("ignored")
    return root


def test_identities_and_min_images(tmp_path: Path) -> None:
    root = make_ids(tmp_path / "ids", {"a": 5, "b": 2, "c": 1, "d": 4})
    (root / "a" / "readme.md").write_text("not an image")
    ds = IdentityFolders(root)
    assert list(ds.identities()) == ["a", "b", "c", "d"] and len(ds.identities()["a"]) == 5
    assert list(IdentityFolders(root, min_images=3).identities()) == ["a", "d"]
    with pytest.raises(ValueError, match="min_images must be an integer >= 1"):
        IdentityFolders(root, min_images=0)
    with pytest.raises(ValueError, match="no identity sub-folder has >= 9 images"):
        IdentityFolders(root, min_images=9)
    with pytest.raises(FileNotFoundError):
        IdentityFolders(tmp_path / "missing")


def test_resolve_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FACEROBUST_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="facerobust data fetch lfw"):
        resolve_dataset("lfw")
    data = tmp_path / "data"
    (data / "lfw-gray").mkdir(parents=True)
    (data / "lfw-gray" / "pairs.txt").write_text("1 1\n")
    monkeypatch.setenv("FACEROBUST_DATA", str(data))
    assert resolve_dataset("lfw-gray") == data / "lfw-gray"
    assert resolve_dataset("lfw") == data / "lfw-gray"  # alias falls back to the gray copy
    fetched = tmp_path / "cache" / "datasets" / "lfw"
    fetched.mkdir(parents=True)
    assert resolve_dataset("lfw") == fetched  # a real lfw/ wins for "lfw"
    # explicit folder: the dataset itself, or a folder holding it
    assert resolve_dataset("lfw", data / "lfw-gray") == data / "lfw-gray"
    assert resolve_dataset("lfw-gray", data) == data / "lfw-gray"
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        resolve_dataset("lfw", tmp_path / "nowhere")
    (tmp_path / "other").mkdir()
    with pytest.raises(FileNotFoundError, match="holds neither lfw nor lfw-gray"):
        resolve_dataset("lfw", tmp_path / "other")
    with pytest.raises(ValueError, match="plain name"):
        resolve_dataset("a/b")
