"""``prepare_dataset`` / ``facerobust data prepare``: counts per outcome, resumability, workers,
the CLI summary."""

from __future__ import annotations

import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from facerobust.cli import main
from facerobust.data import align, prepare
from facerobust.data.chips import load_chips
from facerobust.data.lfw import LFWPairs
from facerobust.data.prepare import iter_image_files, prepare_dataset
from tests.data.test_chips import png_bomb


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def tree(tmp_path: Path, lfw_root: Path) -> tuple[Path, list[Path]]:
    """3 LFW faces in nested folders, a corrupt JPEG, a face-less PNG, a PNG bomb, a text file."""
    root = tmp_path / "photos"
    (root / "a" / "b").mkdir(parents=True)
    src = LFWPairs(lfw_root).image_paths()[:3]
    good = [root / "a" / "one.jpg", root / "a" / "b" / "two.JPG", root / "three.jpeg"]
    for s, d in zip(src, good, strict=True):
        shutil.copy(s, d)
    (root / "a" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    cv2.imwrite(str(root / "blank.png"), np.full((120, 160, 3), 200, np.uint8))
    png_bomb(root / "a" / "b" / "bomb.png", 20000)
    (root / "notes.txt").write_text("not an image suffix: ignored")
    return root, good


def test_workers_and_detector_are_validated(tmp_path: Path, cache: Path, capsys) -> None:
    with pytest.raises(ValueError, match="workers must be an integer >= 1, got 0"):
        prepare_dataset(tmp_path, workers=0)
    with pytest.raises(ValueError, match="'hog', 'hog\\+cnn', 'cnn'"):
        prepare_dataset(tmp_path, detector="mmod")
    with pytest.raises(NotADirectoryError):
        prepare_dataset(tmp_path / "missing")
    assert main(["data", "prepare", str(tmp_path), "--workers", "0"]) == 2
    assert "workers must be an integer >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "prepare", str(tmp_path), "--detector", "mmod"])


def test_walk_is_recursive_sorted_and_filters_suffixes(tmp_path: Path) -> None:
    for rel in ("b/x.PNG", "a/y.jpg", "a/z.txt", "c.webp", "a/sub/w.tiff"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_image_files(tmp_path)]
    assert found == ["c.webp", "a/y.jpg", "a/sub/w.tiff", "b/x.PNG"]


@pytest.mark.data
def test_prepare_counts_each_outcome_and_resumes_instantly(
        tree: tuple[Path, list[Path]], cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, good = tree
    first = prepare_dataset(root, progress=False)
    assert (first.total, first.ok, first.no_face, first.unreadable, first.too_large) == (
        6, {"hog": 3}, 1, 1, 1)
    assert [s.path.name for s in first.skipped] == ["bomb.png", "corrupt.jpg", "blank.png"]
    assert [s.kind for s in first.skipped] == ["too_large", "unreadable", "no_face"]
    assert first.images_per_second > 0
    # second run: everything is cached or refused before decoding, nothing is detected
    monkeypatch.setattr(align, "detect_faces", lambda *_a: pytest.fail("detected again"))
    second = prepare_dataset(root, progress=False)
    assert (second.total, second.ok, second.no_face, second.unreadable, second.too_large) == (
        6, {"hog": 3}, 1, 1, 1)
    assert second.seconds < max(first.seconds, 0.5) and second.seconds < 1.0
    # the chips load_chips needs are all in the cache
    cs = load_chips(good)
    assert cs.paths == good and cs.detector_counts() == {"hog": 3}


@pytest.mark.data
def test_two_workers_give_the_same_counts(tree: tuple[Path, list[Path]], cache: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    root, good = tree
    rep = prepare_dataset(root, workers=2, progress=False)
    assert (rep.total, rep.ok, rep.no_face, rep.unreadable, rep.too_large) == (
        6, {"hog": 3}, 1, 1, 1)
    assert rep.workers == 2 and [s.path.name for s in rep.skipped] == [
        "bomb.png", "corrupt.jpg", "blank.png"]
    monkeypatch.setattr(align, "detect_faces", lambda *_a: pytest.fail("not cached"))
    assert load_chips(good).detector_counts() == {"hog": 3}


def test_cli_lists_the_first_ten_skipped_files(tmp_path: Path, cache: Path, capsys) -> None:
    root = tmp_path / "junk"
    root.mkdir()
    for i in range(12):
        (root / f"bad{i:02d}.jpg").write_bytes(b"not a jpeg")
    t0 = time.perf_counter()
    assert main(["data", "prepare", str(root), "--no-progress"]) == 0
    assert time.perf_counter() - t0 < 5
    out = capsys.readouterr().out
    assert "12 image(s) under" in out and "images/s" in out
    assert "corrupt/unreadable: 12" in out and "ok:                 0 (none)" in out
    assert "skipped 12 file(s), the first 10:" in out
    assert "bad09.jpg: not a decodable image" in out and "bad10.jpg" not in out


def test_the_calling_process_works_beside_its_pool(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``workers=3``: a pool of 2 plus the caller, which aligns files while the pool is busy
    (threads stand in for the spawned processes)."""
    for i in range(24):
        (tmp_path / f"{i:02d}.jpg").write_bytes(b"")
    pools: list[int] = []
    in_caller: list[bool] = []

    class Pool(ThreadPoolExecutor):
        def __init__(self, workers: int, mp_context: object, initializer: Any) -> None:
            pools.append(workers)
            super().__init__(workers, initializer=initializer)

    def work(path: str, settings: tuple[Any, ...]) -> tuple[str, str, str, str]:
        in_caller.append(threading.current_thread() is threading.main_thread())
        time.sleep(0.02)
        return (path, "ok", "hog", "")

    monkeypatch.setattr(prepare, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(prepare, "work", work)
    rep = prepare_dataset(tmp_path, workers=3, progress=False)
    assert pools == [2] and rep.total == 24 and rep.ok == {"hog": 24}
    assert 0 < sum(in_caller) < 24  # the caller and the pool both aligned files
