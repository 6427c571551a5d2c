from __future__ import annotations

import cv2
import dlib
import numpy as np
import pytest

from facerobust.data import align
from facerobust.data.chips import decode_rgb
from facerobust.data.lfw import LFWPairs


def dlib_chip(img: np.ndarray, pts: np.ndarray, size: int = 150, padding: float = 0.25):
    rect = dlib.rectangle(0, 0, img.shape[1] - 1, img.shape[0] - 1)
    det = dlib.full_object_detection(rect, [dlib.point(int(x), int(y)) for x, y in pts])
    return dlib.get_face_chip(img, det, size=size, padding=padding)


def synthetic_case(rng: np.random.Generator, face: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = rng.integers(160, 700, 2)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 1.5)
    ang = rng.uniform(-0.6, 0.6)
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    pts = (align.FACE_TEMPLATE_5 - 0.5) @ rot.T * face
    pts = pts * rng.uniform(0.9, 1.1, (5, 1)) + [rng.uniform(0, w), rng.uniform(0, h)]
    return img, np.round(pts)


@pytest.mark.parametrize("face", [40.0, 120.0, 300.0, 700.0])  # 300/700: dlib's pyramid path
def test_face_chip_matches_dlib_on_synthetic_images(face: float) -> None:
    rng = np.random.default_rng(int(face))
    for _ in range(3):
        img, pts = synthetic_case(rng, face)
        ours = align.face_chip(img, pts)
        ref = dlib_chip(img, pts)
        assert ours.shape == (150, 150, 3) and ours.dtype == np.uint8
        diff = np.abs(ours.astype(int) - ref.astype(int))
        assert diff.max() <= 1 and diff.mean() < 0.01


def test_face_chip_other_size_and_padding() -> None:
    img, pts = synthetic_case(np.random.default_rng(3), 100.0)
    ours = align.face_chip(img, pts, size=112, padding=0.1)
    assert ours.shape == (112, 112, 3)
    assert np.abs(ours.astype(int) - dlib_chip(img, pts, 112, 0.1).astype(int)).max() <= 1


def test_landmarks_at_template_map_onto_themselves() -> None:
    """Landmarks already on the padded template give an unrotated, unscaled chip; like dlib,
    the extraction rectangle is centred so chip pixel (c, r) samples image (c + .5, r + .5)."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (150, 150, 3), dtype=np.uint8)
    pts = (0.25 + align.FACE_TEMPLATE_5) / 1.5 * 150
    details = align.face_chip_details(pts)
    assert abs(details.angle) < 1e-9
    assert details.right - details.left == pytest.approx(149.0)
    chip = align.face_chip(img, pts)
    x = img.astype(np.int64)
    block = (x[:-1, :-1] + x[1:, :-1] + x[:-1, 1:] + x[1:, 1:]) // 4
    diff = np.abs(chip[:-1, :-1].astype(np.int64) - block)
    assert diff.max() <= 1  # float noise at exact-integer truncation edges
    assert (chip[-1] == 0).all() and (chip[:, -1] == 0).all()  # outside the image -> 0


def test_face_chip_validates_inputs() -> None:
    img = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(ValueError, match="5x2"):
        align.face_chip(img, np.zeros((4, 2)))
    with pytest.raises(TypeError, match="uint8"):
        align.face_chip(img.astype(np.float32), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="NaN"):
        align.face_chip(img, np.full((5, 2), np.nan))


def test_gray_input_becomes_three_identical_channels() -> None:
    img, pts = synthetic_case(np.random.default_rng(5), 90.0)
    gray = img[:, :, 0].copy()
    chip = align.face_chip(gray, pts)
    assert np.array_equal(chip[..., 0], chip[..., 1]) and np.array_equal(chip[..., 1], chip[..., 2])


def test_no_face_in_blank_image() -> None:
    assert align.detect_landmarks(np.full((200, 200, 3), 128, np.uint8)) is None


@pytest.mark.data
def test_real_lfw_chips_match_dlib_get_face_chip(lfw_root, capsys) -> None:
    lfw = LFWPairs(lfw_root)
    paths = lfw.image_paths()[:12]
    diffs = []
    for path in paths:
        rgb = decode_rgb(path.read_bytes())
        pts = align.detect_landmarks(rgb)
        if pts is None:
            continue
        ours = align.face_chip(rgb, pts)
        ref = dlib_chip(rgb, pts)
        diffs.append(np.abs(ours.astype(int) - ref.astype(int)))
        # our landmarks are dlib's: same detector and predictor, largest face
        assert pts.shape == (5, 2)
        assert 20 < pts[:, 0].mean() < 230 and 20 < pts[:, 1].mean() < 230
    assert len(diffs) >= 10
    d = np.stack(diffs)
    with capsys.disabled():
        print(f"\n[align vs dlib.get_face_chip on {len(diffs)} LFW images] "
              f"mean |diff| {d.mean():.5f}, max {d.max()}")
    assert d.max() <= 1 and d.mean() < 0.01
