from __future__ import annotations

import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from facerobust.data import align, chips
from facerobust.data.chips import NO_FACE, load_chips
from facerobust.data.lfw import LFWPairs


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_decode_gray_png_gives_three_identical_channels(tmp_path: Path) -> None:
    gray = np.random.default_rng(0).integers(0, 256, (20, 30), dtype=np.uint8)
    ok, enc = cv2.imencode(".png", gray)
    rgb = chips.decode_rgb(enc.tobytes())
    assert rgb.shape == (20, 30, 3)
    assert all(np.array_equal(rgb[..., c], gray) for c in range(3))
    assert chips.decode_rgb(b"not an image") is None
    assert chips.decode_rgb(b"") is None


def test_bad_files_are_skipped_with_reasons(tmp_path: Path, cache: Path) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 120, 3), 90, np.uint8))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    missing = tmp_path / "missing.jpg"
    cs = load_chips([blank, corrupt, text, missing, tmp_path])
    assert len(cs) == 0 and cs.chips.shape == (0, 3, 150, 150)
    reasons = {s.path: s.reason for s in cs.skipped}
    assert reasons[blank] == NO_FACE
    assert "not a decodable image" in reasons[corrupt] and "not a decodable" in reasons[text]
    assert reasons[missing] == "file not found"
    assert "directory" in reasons[tmp_path]
    assert cs.skipped[0].to_dict() == {"path": str(blank), "reason": NO_FACE}


def test_single_path_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="sequence of paths"):
        load_chips(tmp_path / "x.jpg")


def test_settings_key_changes_with_alignment_settings() -> None:
    assert chips.settings_key(150, 0.25) != chips.settings_key(150, 0.3)
    assert chips.settings_key(150, 0.25) != chips.settings_key(112, 0.25)
    assert f"v{align.ALIGN_VERSION}" in chips.settings_key()


@pytest.mark.data
def test_real_chips_cached_and_second_run_skips_detection(
        lfw_root: Path, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = LFWPairs(lfw_root).image_paths()[:6]
    gray_copy = tmp_path / "copy.jpg"
    shutil.copy(paths[0], gray_copy)  # same bytes -> same cache entry
    first = load_chips([*paths, paths[1]])  # duplicate loaded once
    assert first.paths == paths and first.skipped == []
    assert first.chips.shape == (6, 3, 150, 150) and first.chips.dtype == torch.float32
    assert first.chips.min() >= 0.0 and first.chips.max() <= 1.0
    assert first.index[paths[3]] == 3
    # lfw-gray is grayscale: channels identical
    assert torch.equal(first.chips[:, 0], first.chips[:, 1])
    # the chip equals align.face_chip of the decoded image
    rgb = chips.decode_rgb(paths[2].read_bytes())
    ref = align.face_chip(rgb, align.detect_landmarks(rgb))
    assert torch.equal(first.chips[2], torch.from_numpy(ref).permute(2, 0, 1).float() / 255)
    assert len(list(cache.rglob("*.png"))) == 6
    assert not list(cache.rglob(".tmp-*"))

    def no_detection(_rgb):
        raise AssertionError("detector called on a cache hit")

    monkeypatch.setattr(align, "detect_landmarks", no_detection)
    t0 = time.perf_counter()
    second = load_chips([*paths, gray_copy])
    elapsed = time.perf_counter() - t0
    assert torch.equal(second.chips[:6], first.chips)
    assert torch.equal(second.chips[6], first.chips[0])
    assert elapsed < 2.0
    # without the cache the detector runs again
    with pytest.raises(AssertionError, match="cache hit"):
        load_chips(paths[:1], cache=False)


def test_no_face_result_is_cached(tmp_path: Path, cache: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((100, 100, 3), 10, np.uint8))
    assert load_chips([blank]).skipped[0].reason == NO_FACE
    monkeypatch.setattr(align, "detect_landmarks", lambda _r: pytest.fail("re-detected"))
    assert load_chips([blank]).skipped[0].reason == NO_FACE


def test_unwritable_cache_is_not_fatal(tmp_path: Path, cache: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((100, 100, 3), 10, np.uint8))

    def fail(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(chips, "_atomic_write", fail)
    assert load_chips([blank]).skipped[0].reason == NO_FACE
