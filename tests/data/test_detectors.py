"""Detector modes: validation, CNN rescue of HOG misses, cache provenance, largest face and face
counts, detection on a downscaled copy of large photos."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from facerobust.data import align, capture, chips
from facerobust.data.chips import DETECTORS, NO_FACE, chip_for_file, decode_rgb, load_chips
from facerobust.data.lfw import LFWPairs


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def lfw_rgb(lfw_root: Path, count: int = 12) -> list[np.ndarray]:
    return [decode_rgb(p.read_bytes()) for p in LFWPairs(lfw_root).image_paths()[:count]]


def rotate(rgb: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(rgb, m, (w, h)), m


def test_detector_modes_are_validated(tmp_path: Path) -> None:
    assert DETECTORS == ("hog", "hog+cnn", "cnn")
    allowed = r"'hog', 'hog\+cnn', 'cnn'"
    with pytest.raises(ValueError, match=allowed):
        load_chips([tmp_path / "a.jpg"], detector="mmod")
    with pytest.raises(ValueError, match=allowed):
        chip_for_file(tmp_path / "a.jpg", None, "HOG")
    with pytest.raises(ValueError, match="'hog', 'cnn'"):
        align.detect_faces(np.zeros((50, 50, 3), np.uint8), "hog+cnn")


@pytest.mark.data
def test_cnn_rescues_a_face_hog_misses_and_the_cache_remembers_which(
        lfw_root: Path, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a 50-degree tilt is beyond HOG's frontal templates; find such an LFW image
    for rgb in lfw_rgb(lfw_root):
        tilted, m = rotate(rgb, 50)
        if not align.detect_faces(tilted, "hog"):
            break
    else:
        pytest.fail("HOG found every 50-degree-rotated face")
    path = tmp_path / "tilted.png"
    cv2.imwrite(str(path), tilted[:, :, ::-1])
    assert load_chips([path], detector="hog").skipped[0].reason == NO_FACE
    cs = load_chips([path])  # default "hog+cnn"
    assert cs.paths == [path] and cs.detectors == {path: "cnn"}
    assert cs.detector_counts() == {"cnn": 1} and cs.faces_found[path] >= 1
    # the CNN box gives the right landmarks: the rotated HOG landmarks of the upright image
    ref = align.detect_faces(rgb, "hog")[0][0]
    expected = ref @ m[:, :2].T + m[:, 2]
    got = align.detect_faces(tilted, "cnn")[0][0]
    eyes = np.linalg.norm(ref[0] - ref[2])
    assert np.linalg.norm(got - expected, axis=1).max() < 0.25 * eyes
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    names = sorted(p.name for p in (cache / "chips").rglob(f"{sha}*"))
    assert names == [f"{sha}.cnn.png", f"{sha}.noface"]
    # cache hits report the detector without detecting again
    monkeypatch.setattr(align, "detect_faces", lambda *_a: pytest.fail("detected again"))
    for detector in ("hog+cnn", "cnn"):
        hit = load_chips([path], detector=detector)
        assert hit.detectors == {path: "cnn"} and hit.faces_found == cs.faces_found
        assert hit.chips.equal(cs.chips)
    assert load_chips([path], detector="hog").skipped[0].reason == NO_FACE


@pytest.mark.data
def test_cnn_mode_runs_the_cnn_even_where_hog_succeeds(lfw_root: Path, cache: Path) -> None:
    path = LFWPairs(lfw_root).image_paths()[0]
    hog = load_chips([path], detector="hog")
    cnn = load_chips([path], detector="cnn")
    assert hog.detectors == {path: "hog"} and cnn.detectors == {path: "cnn"}
    assert (hog.chips - cnn.chips).abs().mean() < 8 / 255  # same face, slightly other box
    assert len(list((cache / "chips").rglob("*.png"))) == 2  # <sha>.png and <sha>.cnn.png
    again = load_chips([path])  # hog+cnn: HOG's cached chip wins
    assert again.detectors == {path: "hog"} and again.chips.equal(hog.chips)


@pytest.mark.data
def test_largest_face_is_used_and_all_faces_are_counted(
        lfw_root: Path, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big, other = lfw_rgb(lfw_root, 3)[0], lfw_rgb(lfw_root, 3)[2]
    canvas = np.full((400, 640, 3), 120, np.uint8)
    canvas[80:330, 16:266] = big
    canvas[120:270, 400:550] = cv2.resize(other, (150, 150), interpolation=cv2.INTER_AREA)
    faces = align.detect_faces(canvas, "hog")
    assert len(faces) == 2
    alone = align.detect_faces(big, "hog")[0][0]
    assert np.abs(faces[0][0] - (alone + [16, 80])).max() <= 3  # the largest face comes first
    path = tmp_path / "two.png"
    cv2.imwrite(str(path), canvas[:, :, ::-1])
    cs = load_chips([path])
    assert cs.faces_found == {path: 2} and cs.detectors == {path: "hog"}
    ref = align.face_chip(canvas, faces[0][0])
    assert np.array_equal(cs.chips[0].permute(1, 2, 0).mul(255).round().byte().numpy(), ref)
    # the count survives the cache
    assert load_chips([path]).faces_found == {path: 2}
    # an entry written before face counts existed (plain cv2 PNG) is recounted once, upgraded
    (png,) = (cache / "chips").rglob("*.png")
    cv2.imwrite(str(png), ref[:, :, ::-1])
    assert load_chips([path]).faces_found == {path: 2}
    monkeypatch.setattr(align, "detect_faces", lambda *_a: pytest.fail("recounted"))
    again = load_chips([path])
    assert again.faces_found == {path: 2} and again.chips.equal(cs.chips)


@pytest.mark.data
def test_large_photo_is_detected_downscaled_with_landmarks_mapped_back(
        lfw_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rgb = lfw_rgb(lfw_root, 1)[0]
    scale = 8
    big = cv2.resize(rgb, (250 * scale, 250 * scale), interpolation=cv2.INTER_LINEAR)
    seen: list[tuple[str, tuple[int, ...]]] = []
    real = align._dlib_models

    def spy(cnn: bool = False):
        det, predictor = real(cnn)

        def detect(img, upsample):
            seen.append(("cnn" if cnn else "hog", img.shape))
            return det(img, upsample)

        return detect, predictor

    monkeypatch.setattr(align, "_dlib_models", spy)
    small = align.detect_faces(rgb, "hog")[0][0]
    pts = align.detect_faces(big, "hog")[0][0]
    assert seen[-1] == ("hog", (align.DETECT_SIDE, align.DETECT_SIDE, 3))
    # full-resolution landmarks: mapped back to the LFW scale they sit within 2 px
    assert np.abs((pts + 0.5) / scale - 0.5 - small).max() < 2.0
    cnn_pts = align.detect_faces(big, "cnn")[0][0]
    kind, shape = seen[-1]
    assert kind == "cnn" and shape[0] * shape[1] <= align.CNN_MAX_PIXELS
    assert np.abs((cnn_pts + 0.5) / scale - 0.5 - small).max() < 6.0
    chip = align.face_chip(big, pts)
    ref = align.face_chip(rgb, small)
    assert np.abs(chip.astype(int) - ref.astype(int)).mean() < 8


def test_read_image_refuses_over_the_pixel_limit_before_decoding(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ok, enc = cv2.imencode(".png", np.zeros((30, 40, 3), np.uint8))
    monkeypatch.setattr(capture, "decode_rgb", lambda _d: pytest.fail("decoded"))
    rgb, reason = chips.read_image(enc.tobytes(), max_pixels=1000)
    assert rgb is None and reason.startswith("too large: 40x30 = ")
    assert reason.endswith("(limit 0.001 megapixels)")
