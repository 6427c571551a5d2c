"""The detector chain at its working size (issue #30): photos larger than ``detect_side()`` are
detected on a shrunk copy, landmarks come back in full-resolution coordinates and the chip is
cut from the original pixels; smaller photos are detected exactly as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from facerobust.data import align, chips
from facerobust.data.chips import chip_for_file, decode_rgb


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def colour(data_root: Path) -> list[np.ndarray]:
    """6 colour in-the-wild photos: 3 LFW-colour (250 px), 3 CFP frontal (150-360 px)."""
    lfw = sorted((data_root / "lfw-color" / "images").glob("*/*.jpg"))[:3]
    cfp = sorted((data_root / "cfp" / "Data" / "Images").glob("*/frontal/01.jpg"))[:3]
    if len(lfw) < 3 or len(cfp) < 3:
        pytest.skip("needs lfw-color/ and cfp/ under FACEROBUST_DATA")
    return [decode_rgb(p.read_bytes()) for p in lfw + cfp]


def spy_models(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[int, ...]]]:
    """Records (what, image shape) of every detector and predictor call."""
    seen: list[tuple[str, tuple[int, ...]]] = []
    real = align._dlib_models

    def models(cnn: bool = False) -> tuple[Any, Any]:
        det, predictor = real(cnn)

        def detect(img: np.ndarray, upsample: int) -> Any:
            seen.append(("cnn" if cnn else "hog", img.shape))
            return det(img, upsample)

        def predict(img: np.ndarray, rect: Any) -> Any:
            seen.append(("landmarks", img.shape))
            return predictor(img, rect)

        return detect, predict

    monkeypatch.setattr(align, "_dlib_models", models)
    return seen


def upscale(rgb: np.ndarray, factor: int) -> np.ndarray:
    """A 'phone-size' copy: bicubic upscaling and a JPEG round trip."""
    big = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    ok, enc = cv2.imencode(".jpg", big[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    return decode_rgb(enc.tobytes())


def test_detect_side_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(align.DETECT_SIDE_ENV, raising=False)
    assert align.detect_side() == align.DETECT_SIDE
    monkeypatch.setenv(align.DETECT_SIDE_ENV, "1600")
    assert align.detect_side() == 1600
    assert chips.settings_key().endswith("-d1600")
    monkeypatch.setenv(align.DETECT_SIDE_ENV, "big")
    with pytest.raises(ValueError, match="FACEROBUST_DETECT_SIDE='big': expected an integer"):
        align.detect_side()
    monkeypatch.setenv(align.DETECT_SIDE_ENV, "40")
    with pytest.raises(ValueError, match="FACEROBUST_DETECT_SIDE=40: must be >= 80"):
        align.detect_side()


def test_working_copy_keeps_small_photos_and_shrinks_large_ones() -> None:
    small = np.zeros((200, 300, 3), np.uint8)
    assert align.working_copy(small, 300)[0] is small
    copy, sx, sy = align.working_copy(np.zeros((900, 1200, 3), np.uint8), 300)
    assert copy.shape == (225, 300, 3) and (sx, sy) == (0.25, 0.25)


@pytest.mark.data
def test_photos_within_the_working_size_are_detected_as_before(
        colour: list[np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    seen = spy_models(monkeypatch)
    for rgb in colour:
        monkeypatch.setenv(align.DETECT_SIDE_ENV, str(max(rgb.shape[:2])))
        ours = align.detect_faces(rgb, "hog")
        assert all(shape == rgb.shape for _, shape in seen)  # nothing shrunk
        monkeypatch.setenv(align.DETECT_SIDE_ENV, "1600")
        before = align.detect_faces(rgb, "hog")
        assert [b for _, b in ours] == [b for _, b in before]
        assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(ours, before, strict=True))
        seen.clear()


@pytest.mark.data
def test_phone_size_photos_give_chips_close_to_the_full_size_chain(
        colour: list[np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    """3x upscaled colour photos: HOG on the working copy, landmarks on the full photo, chip
    from the full photo. Measured against the chain before #30 (HOG at 1600 px): landmarks
    within a few full-size pixels, chips a few grey levels apart on average."""
    seen = spy_models(monkeypatch)
    lmk, chip_mean = [], []
    for rgb in colour:
        big = upscale(rgb, 3)
        monkeypatch.setenv(align.DETECT_SIDE_ENV, "1600")
        ref = align.detect_faces(big, "hog")[0][0]
        monkeypatch.delenv(align.DETECT_SIDE_ENV)
        seen.clear()
        pts = align.detect_faces(big, "hog")[0][0]
        h, w = big.shape[:2]
        side = align.DETECT_SIDE
        assert seen[0] == ("hog", (round(h * side / max(h, w)), round(w * side / max(h, w)), 3))
        assert ("landmarks", big.shape) in seen  # predicted on the full-resolution photo
        lmk.append(np.abs(pts - ref).max())
        diff = np.abs(align.face_chip(big, pts).astype(int) - align.face_chip(big, ref))
        chip_mean.append(diff.mean())
    assert np.median(lmk) <= 3.0 and max(lmk) <= 12.0  # pixels of the 3x photo
    assert np.median(chip_mean) <= 4.0


@pytest.mark.data
def test_landmarks_come_back_in_full_resolution_coordinates(
        colour: list[np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    """A face pasted 2x enlarged at (700, 400) into a 1600x1200 photo: the landmarks are the
    small photo's, scaled and shifted, and the chip matches the small photo's chip."""
    rgb = colour[0]
    small = align.detect_faces(rgb, "hog")[0][0]
    canvas = np.full((1200, 1600, 3), 90, np.uint8)
    face = cv2.resize(rgb, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    canvas[400: 400 + face.shape[0], 700: 700 + face.shape[1]] = face
    seen = spy_models(monkeypatch)
    (pts, box), = align.detect_faces(canvas, "hog")
    assert seen[0][1][1] == align.DETECT_SIDE  # detected on the shrunk copy
    expected = (small + 0.5) * 2 - 0.5 + [700, 400]
    assert np.abs(pts - expected).max() <= 4.0
    assert box[0] >= 700 and box[2] <= 700 + face.shape[1] and box[1] >= 400
    chip = align.face_chip(canvas, pts).astype(int)
    assert np.abs(chip - align.face_chip(rgb, small)).mean() <= 6.0


@pytest.mark.data
def test_cnn_fallback_runs_on_the_working_copy(
        colour: list[np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    big = upscale(colour[1], 3)
    seen = spy_models(monkeypatch)
    pts = align.detect_faces(big, "cnn")[0][0]
    kind, shape = seen[0]
    assert kind == "cnn" and max(shape[:2]) == align.DETECT_SIDE
    assert ("landmarks", big.shape) in seen
    ref = align.detect_faces(big, "hog")[0][0]
    assert np.abs(pts - ref).max() <= 15.0  # the same face, in full-resolution pixels


@pytest.mark.data
def test_a_large_photo_without_a_face_is_skipped_and_marked(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.integers(0, 256, (960, 1280, 3), dtype=np.uint8), (9, 9), 3)
    path = tmp_path / "wall.png"
    cv2.imwrite(str(path), noise)
    seen = spy_models(monkeypatch)
    res = chip_for_file(path, chips.chip_cache_root(), "hog+cnn")
    assert res.chip is None and res.kind == chips.NO_FACE_KIND
    assert [k for k, _ in seen] == ["hog", "cnn"]  # both stages tried, on the working copy
    assert all(max(s[:2]) == align.DETECT_SIDE for _, s in seen)
    markers = sorted(p.name.split(".", 1)[1] for p in cache.rglob("*.noface"))
    assert markers == ["cnn.noface", "noface"]
