"""Chip cache entries check themselves: replaced, truncated or planted entries are recomputed."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from facerobust.cli import main
from facerobust.data.chip_cache import verify_chip_cache
from facerobust.data.chips import NO_FACE, chip_cache_root, load_chips


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.data
def test_replaced_chip_and_planted_marker_are_detected(lfw_root: Path, cache: Path,
                                                       tmp_path: Path) -> None:
    face = tmp_path / "face.jpg"
    shutil.copyfile(next((lfw_root / "images" / "Aaron_Eckhart").iterdir()), face)
    first = load_chips([face], detector="hog")
    (png,) = list(chip_cache_root().rglob("*.png"))
    cv2.imwrite(str(png), np.zeros((150, 150, 3), np.uint8))  # a valid but wrong image
    checked, damaged = verify_chip_cache(cache / "chips")
    assert checked == 1 and len(damaged) == 1 and png.name in damaged[0]
    again = load_chips([face], detector="hog")
    assert np.array_equal(again.chips.numpy(), first.chips.numpy())  # recomputed, not black
    assert verify_chip_cache(cache / "chips")[1] == []  # and the entry rewritten
    # a planted empty no-face marker does not hide the face
    png.unlink()
    (png.parent / png.name.replace(".png", ".noface")).write_bytes(b"")
    assert load_chips([face], detector="hog").skipped == []


def test_no_face_markers_are_written_with_their_source(cache: Path, tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((80, 80, 3), 9, np.uint8))
    assert load_chips([blank], detector="hog").skipped[0].reason == NO_FACE
    (marker,) = list(chip_cache_root().rglob("*.noface"))
    assert b"source_sha256" in marker.read_bytes()
    assert verify_chip_cache(cache / "chips") == (1, [])


def test_cache_verify_cli_fixes_damage(cache: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((80, 80, 3), 9, np.uint8))
    load_chips([blank], detector="hog")
    (marker,) = list(chip_cache_root().rglob("*.noface"))
    marker.write_bytes(b"{}")
    assert main(["cache", "verify"]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED" in out and marker.name in out and "1 damaged" in out
    assert main(["cache", "verify", "--fix"]) == 0
    assert not marker.exists()
    assert main(["cache", "clear", "chips"]) == 0 and not (cache / "chips").exists()
    assert main(["cache", "clear", "everything"]) == 2
