from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

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

    assert first.detectors == {p: "hog" for p in paths} and first.detector_counts() == {"hog": 6}
    assert all(first.faces_found[p] >= 1 for p in paths)

    def no_detection(*_a):
        raise AssertionError("detector called on a cache hit")

    monkeypatch.setattr(align, "detect_faces", no_detection)
    t0 = time.perf_counter()
    second = load_chips([*paths, gray_copy])
    elapsed = time.perf_counter() - t0
    assert torch.equal(second.chips[:6], first.chips)
    assert torch.equal(second.chips[6], first.chips[0])
    assert elapsed < 2.0
    assert second.detectors[gray_copy] == "hog" and second.faces_found == {
        **first.faces_found, gray_copy: first.faces_found[paths[0]]}
    # without the cache the detector runs again
    with pytest.raises(AssertionError, match="cache hit"):
        load_chips(paths[:1], cache=False)


def test_no_face_result_is_cached(tmp_path: Path, cache: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((100, 100, 3), 10, np.uint8))
    assert load_chips([blank]).skipped[0].reason == NO_FACE  # HOG, then CNN: both cached
    names = sorted(p.name.split(".", 1)[1] for p in cache.rglob("*.noface"))
    assert names == ["cnn.noface", "noface"]
    monkeypatch.setattr(align, "detect_faces", lambda *_a: pytest.fail("re-detected"))
    for detector in ("hog", "hog+cnn", "cnn"):
        skipped = load_chips([blank], detector=detector).skipped[0]
        assert (skipped.reason, skipped.kind) == (NO_FACE, "no_face")


def test_hog_miss_cached_then_only_cnn_runs(tmp_path: Path, cache: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A HOG-only run caches "HOG found none"; a later hog+cnn run runs only the CNN."""
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((100, 100, 3), 10, np.uint8))
    assert load_chips([blank], detector="hog").skipped[0].reason == NO_FACE
    assert not list(cache.rglob("*.cnn.*"))
    calls: list[str] = []
    real = align.detect_faces
    monkeypatch.setattr(align, "detect_faces", lambda rgb, det: calls.append(det) or real(rgb, det))
    assert load_chips([blank]).skipped[0].reason == NO_FACE
    assert calls == ["cnn"]


def test_unwritable_cache_is_not_fatal(tmp_path: Path, cache: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((100, 100, 3), 10, np.uint8))

    def fail(*_a, **_k):
        raise OSError(28, "No space left on device")

    from facerobust.data import chip_cache

    monkeypatch.setattr(chip_cache, "atomic_write", fail)
    assert load_chips([blank]).skipped[0].reason == NO_FACE


def png_bomb(path: Path, side: int) -> Path:
    """A ``side`` x ``side`` 1-bit all-black PNG written row by row (never held in memory):
    a few dozen KB on disk, ``3 * side**2`` bytes once decoded to RGB."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))
    return path


BOMB_CHILD = """
import resource, sys, time
from pathlib import Path
import torch  # noqa: F401  (imported before the baseline: load_chips needs it)
from facerobust.data.chips import load_chips
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
cs = load_chips([Path(sys.argv[1])])
elapsed = time.perf_counter() - t0
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
print(f"{elapsed:.3f} {grown:.1f} {cs.skipped[0].kind}|{cs.skipped[0].reason}")
"""


@pytest.mark.parametrize("side", [20000, 8000])  # above / below Pillow's own bomb limit
def test_decompression_bomb_is_refused_quickly_without_allocating(
        tmp_path: Path, cache: Path, side: int) -> None:
    bomb = png_bomb(tmp_path / "bomb.png", side)
    assert bomb.stat().st_size < 200_000
    out = subprocess.run([sys.executable, "-c", BOMB_CHILD, str(bomb)], capture_output=True,
                         text=True, check=True, timeout=120).stdout.split(maxsplit=2)
    elapsed, grown_mb, (kind, reason) = float(out[0]), float(out[1]), out[2].strip().split("|")
    assert kind == "too_large" and reason.startswith("too large: ")
    mp = f"{side * side / 1e6:.1f} megapixels"
    assert mp in reason and "limit 50 megapixels" in reason
    if side == 8000:
        assert "8000x8000" in reason
    assert elapsed < 1.0  # decoding it would take seconds (and 3 * side**2 bytes)
    assert grown_mb < 100


def test_byte_limit_is_checked_before_reading(tmp_path: Path, cache: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff" * 3_000_000)
    monkeypatch.setattr(Path, "read_bytes", lambda _p: pytest.fail("read"))
    skipped = load_chips([big], max_bytes=2_000_000).skipped[0]
    assert skipped == chips.SkippedImage(
        big, "too large: 3.0 MB on disk (limit 2 MB)", "too_large")


# EXIF orientation -> (Pillow transpose that makes the stored pixels from the upright image)
STORED = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
          4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
          6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
          8: Image.Transpose.ROTATE_270}


@pytest.mark.data
@pytest.mark.parametrize("orientation", sorted(STORED))
def test_exif_orientation_is_honoured(lfw_root: Path, tmp_path: Path, cache: Path,
                                      orientation: int) -> None:
    src = LFWPairs(lfw_root).image_paths()[0]
    upright = Image.open(src)
    stored = upright.transpose(STORED[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    tagged, untagged = tmp_path / "tagged.jpg", tmp_path / "untagged.jpg"
    stored.save(tagged, "JPEG", quality=95, exif=exif.tobytes())
    stored.save(untagged, "JPEG", quality=95)
    ref = chips.decode_rgb(src.read_bytes())
    rgb, _ = chips.read_image(tagged.read_bytes())
    assert rgb.shape == ref.shape and np.abs(rgb.astype(int) - ref).mean() < 1.5  # JPEG loss
    landmarks = align.detect_landmarks(rgb)
    assert np.abs(landmarks - align.detect_landmarks(ref)).max() <= 2
    cs = load_chips([src, tagged, untagged], detector="hog")
    assert tagged in cs.index
    diff = (cs.chips[cs.index[tagged]] - cs.chips[cs.index[src]]).abs() * 255
    assert diff.mean() < 5  # a 1-px landmark shift alone moves a chip by ~3 on average
    if orientation in (5, 6, 7, 8) and untagged in cs.index:  # without the tag: sideways
        assert (cs.chips[cs.index[untagged]] - cs.chips[cs.index[src]]).abs().mean() > 0.1
