"""Capture: photo bytes -> size limits -> decode -> detector chain -> landmarks -> warp plan ->
chip. The one path from a photo to a chip, shared by the chip cache (the audit), the gate and
the photo-space attacks (:class:`facerobust.system.FaceSystem` composes it).

Sizes are checked *before* decoding (the byte count, then the pixel count read from the image
header, so a decompression bomb is refused without being decompressed). The detector chain
runs its stages in order (``"hog+cnn"``: dlib HOG, then the CNN only when HOG finds nothing);
the largest face is used. The :class:`~facerobust.data.align.WarpPlan` of a capture feeds both
the exact uint8 chip (:func:`~facerobust.data.align.apply_plan`) and the differentiable one
(:class:`facerobust.data.warp.ChipWarp`).
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

import numpy as np

from facerobust.data import align

DETECTORS = ("hog", "hog+cnn", "cnn")
NO_FACE = "no face detected"
NOT_DECODABLE = "not a decodable image (corrupt or unsupported format)"
MAX_PIXELS = 50_000_000  # images above this are refused before decoding
MAX_BYTES = 50_000_000  # files above this are refused before reading
# a format's signature in the file's first bytes (what the decoders themselves go by)
MAGIC = {"jpeg": (b"\xff\xd8\xff",), "png": (b"\x89PNG\r\n\x1a\n",),
         "gif": (b"GIF87a", b"GIF89a"), "bmp": (b"BM",), "tiff": (b"II*\x00", b"MM\x00*"),
         "webp": (b"RIFF",)}
PIL_NAMES = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "bmp": "BMP", "tiff": "TIFF",
             "webp": "WEBP"}


class CaptureError(ValueError):
    """A photo the capture cannot use: ``field`` names the input (a form field or a file),
    ``status`` the matching HTTP code (413 too large, 415 not an image, 422 no face)."""

    def __init__(self, field_name: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.field = field_name
        self.status = status


def check_detector(detector: str) -> tuple[str, ...]:
    """The single detectors ``detector`` runs in order; ValueError naming the allowed modes."""
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}: use one of "
                         + ", ".join(repr(d) for d in DETECTORS))
    return tuple(detector.split("+"))


def decode_rgb(data: bytes) -> np.ndarray | None:
    """Decode image bytes to an (H, W, 3) uint8 RGB array (gray -> 3 channels), or ``None``.

    No size check: use :func:`read_image` for untrusted files."""
    import cv2

    if not data:
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)  # applies the EXIF orientation
    if img is None or img.ndim != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        return None
    return np.ascontiguousarray(img[:, :, ::-1])


def sniff(data: bytes) -> str | None:
    """The image format the file's own first bytes announce (a key of :data:`MAGIC`)."""
    for name, heads in MAGIC.items():
        if data.startswith(heads) and (name != "webp" or data[8:12] == b"WEBP"):
            return name
    return None


def header_size(data: bytes, formats: tuple[str, ...] = ()) -> tuple[int, int] | str | None:
    """``(width, height)`` from the image header without decoding the pixels (only the
    Pillow plugins of ``formats`` when given); a reason string when Pillow refuses it as a
    decompression bomb; ``None`` when it is not an image."""
    from PIL import Image

    plugins = [PIL_NAMES[f] for f in formats] or None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=plugins) as im:
                return int(im.size[0]), int(im.size[1])
    except Image.DecompressionBombError as err:
        match = re.search(r"\((\d+) pixels\)", str(err))
        return f"{int(match[1]) / 1e6:.1f} megapixels" if match else str(err)
    except Exception:  # Pillow raises many types on garbage; all mean "not an image"
        return None


def read_image(data: bytes, max_pixels: int = MAX_PIXELS,
               formats: tuple[str, ...] = ()) -> tuple[np.ndarray | None, str]:
    """Decoded RGB image, or ``(None, reason)``; refuses more than ``max_pixels`` pixels
    (as the header declares them) before decoding anything, and -- with ``formats`` -- any
    file whose first bytes are not one of those formats (so no other decoder runs)."""
    found = sniff(data)
    if formats and found not in formats:
        what = f"a {found.upper()} image by its content" if found else NOT_DECODABLE
        return None, f"{what}; allowed formats: {', '.join(formats)}"
    size = header_size(data, formats)
    if size is None:
        return None, NOT_DECODABLE
    if isinstance(size, str):
        return None, f"too large: {size} (limit {max_pixels / 1e6:g} megapixels)"
    w, h = size
    if w * h > max_pixels:
        return None, (f"too large: {w}x{h} = {w * h / 1e6:.1f} megapixels "
                      f"(limit {max_pixels / 1e6:g} megapixels)")
    rgb = decode_rgb(data)
    return (None, NOT_DECODABLE) if rgb is None else (rgb, "")


@dataclass(frozen=True)
class Located:
    """The face a detector stage found: its landmarks, the warp plan to the chip, which stage
    found it and how many faces that stage saw (the largest is used)."""

    landmarks: np.ndarray  # (5, 2) float64, full-resolution pixels
    plan: align.WarpPlan
    detector: str
    faces: int
    areas: tuple[float, ...] = ()  # every face's box area in pixels, largest first

    def others(self, ratio: float) -> int:
        """How many other faces have at least ``ratio`` times the largest face's area."""
        return sum(1 for a in self.areas[1:] if self.areas[0] > 0 and a >= ratio * self.areas[0])


@dataclass(frozen=True)
class Captured:
    """A captured photo: the decoded RGB pixels, the face located in them and its exact chip."""

    rgb: np.ndarray  # (H, W, 3) uint8
    located: Located
    chip: np.ndarray  # (size, size, 3) uint8, exactly as dlib's get_face_chip

    @property
    def plan(self) -> align.WarpPlan:
        return self.located.plan


@dataclass(frozen=True)
class Capture:
    """The camera side of a face system: limits, decoder, detector chain and chip geometry."""

    detector: str = "hog"
    max_bytes: int = MAX_BYTES
    max_pixels: int = MAX_PIXELS
    size: int = align.CHIP_SIZE
    padding: float = align.CHIP_PADDING
    formats: tuple[str, ...] = ()  # allowed image formats (keys of MAGIC); () = any

    def __post_init__(self) -> None:
        check_detector(self.detector)
        unknown = sorted(set(self.formats) - set(MAGIC))
        if unknown:
            raise ValueError(f"unknown image format {unknown[0]!r}; use {', '.join(MAGIC)}")
        for name in ("max_bytes", "max_pixels", "size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"capture {name} must be >= 1, got {getattr(self, name)}")

    @property
    def stages(self) -> tuple[str, ...]:
        return check_detector(self.detector)

    def decode(self, data: bytes, field_name: str = "photo") -> np.ndarray:
        """RGB pixels of ``data``, refused (:class:`CaptureError`) before decoding when too
        large, and when not an image."""
        if len(data) > self.max_bytes:
            raise CaptureError(field_name, f"too large: {len(data)} bytes (limit "
                               f"{self.max_bytes})", 413)
        rgb, reason = read_image(data, max_pixels=self.max_pixels, formats=self.formats)
        if rgb is None:
            raise CaptureError(field_name, reason,
                               413 if reason.startswith("too large") else 415)
        return rgb

    def locate_with(self, rgb: np.ndarray, stage: str) -> Located | None:
        """The largest face one detector ``stage`` finds, or ``None``."""
        faces = align.detect_faces(rgb, stage)  # thread-safe: align holds dlib's lock
        if not faces:
            return None
        plan = align.plan_chip(align.face_chip_details(faces[0][0], size=self.size,
                                                       padding=self.padding), rgb.shape[:2])
        if plan is None:
            return None
        areas = tuple(float((r - x) * (b - y)) for _, (x, y, r, b) in faces)
        return Located(faces[0][0], plan, stage, len(faces), areas)

    def locate(self, rgb: np.ndarray, field_name: str = "photo") -> Located:
        """The face the detector chain finds first; :class:`CaptureError` (422) without."""
        for stage in self.stages:
            found = self.locate_with(rgb, stage)
            if found is not None:
                return found
        raise CaptureError(field_name, NO_FACE, 422)

    def from_rgb(self, rgb: np.ndarray, field_name: str = "photo") -> Captured:
        located = self.locate(rgb, field_name)
        return Captured(rgb, located, align.apply_plan(rgb, located.plan))

    def __call__(self, data: bytes, field_name: str = "photo") -> Captured:
        """Photo bytes -> :class:`Captured` (the exact, non-differentiable path)."""
        return self.from_rgb(self.decode(data, field_name), field_name)
