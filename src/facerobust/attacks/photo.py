"""Photo-space attacks: the perturbation lives in the photo's pixels and reaches the model
through a *differentiable* copy of the gate's alignment.

:class:`ChipWarp` reproduces :func:`facerobust.data.align.extract_chip` (dlib's
``extract_image_chip``: crop to the chip's bounding box, ``pyramid_down<2>`` levels for large
faces, bilinear sampling of the rotated chip rectangle) with ``torch`` ops: the pyramid is the
same [1 4 6 4 1] filter as a convolution and the sampling is ``grid_sample`` of the chip's
similarity transform, with landmarks detected once on the clean photo. It matches the uint8
chip to within the last bit (dlib truncates, the warp does not).

:class:`PhotoFaceModel` is ``model(warp(photo))``: a face model over photos, so the library's
attacks (PGD, ...) craft photo-space adversarials unchanged. With ``eot_samples > 1`` its
output is the mean over random small shifts / scales of the sampling grid (the gate re-detects
the landmarks of the perturbed photo) and, with ``jpeg``, JPEG re-encoding (straight-through
gradient), i.e. Expectation over Transformation.

:func:`paste_chip_delta` maps a chip-space perturbation back into the photo (the chip-space
baseline: an adversarial chip pasted into the photo the gate will re-align).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from facerobust.data import align

_K = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])


@dataclass(frozen=True)
class WarpPlan:
    """How one photo becomes its chip: a crop, ``levels`` pyramid steps, then a sampling
    affine ``(x, y) = origin + ax * c + ay * r`` in the (cropped, reduced) image."""

    crop: tuple[int, int, int, int]  # left, top, right, bottom (inclusive) in the photo
    levels: int
    origin: tuple[float, float]
    ax: tuple[float, float]
    ay: tuple[float, float]
    size: int

    @classmethod
    def from_landmarks(cls, landmarks5: np.ndarray, photo_hw: tuple[int, int], *,
                       size: int = align.CHIP_SIZE, padding: float = align.CHIP_PADDING
                       ) -> WarpPlan:
        d = align.face_chip_details(landmarks5, size=size, padding=padding)
        h, w = photo_hw
        rect = (d.left, d.top, d.right, d.bottom)
        grow = 2.0
        r = align._rect_down(rect)
        while align._area(r) > size * size:  # dlib's growth margin, as extract_chip
            r = align._rect_down(r)
            grow = grow * 2 + 2
        center = np.array([(rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2])
        corners = [np.array(c) for c in ((rect[0], rect[1]), (rect[2], rect[1]),
                                         (rect[0], rect[3]), (rect[2], rect[3]))]
        rot = np.array([align._rotate(center, c, d.angle) for c in corners])
        lo, hi = rot.min(0) - grow, rot.max(0) + grow
        bl, bt = align._lround(max(lo[0], 0.0)), align._lround(max(lo[1], 0.0))
        br, bb = align._lround(min(hi[0], w - 1.0)), align._lround(min(hi[1], h - 1.0))
        if br < bl or bb < bt:
            raise ValueError("the chip lies outside the photo")
        rect = (rect[0] - bl, rect[1] - bt, rect[2] - bl, rect[3] - bt)
        levels = 0
        while align._area(align._rect_down(rect)) > size * size:
            levels += 1
            rect = align._rect_down(rect)
        center = np.array([(rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2])
        tl = align._rotate(center, np.array([rect[0], rect[1]]), d.angle)
        tr = align._rotate(center, np.array([rect[2], rect[1]]), d.angle)
        lb = align._rotate(center, np.array([rect[0], rect[3]]), d.angle)
        ax, ay = (tr - tl) / (size - 1), (lb - tl) / (size - 1)
        return cls((bl, bt, br, bb), levels, (float(tl[0]), float(tl[1])),
                   (float(ax[0]), float(ax[1])), (float(ay[0]), float(ay[1])), size)

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


def _pyramid_down(x: torch.Tensor) -> torch.Tensor:
    """dlib ``pyramid_down<2>`` on float NCHW (filter [1 4 6 4 1]^2 / 256, every other pixel)."""
    n, c, h, w = x.shape
    nc, nr = (w - 3) // 2, (h - 3) // 2
    k = _K.to(x.device, x.dtype)
    flat = x.reshape(n * c, 1, h, w)
    rows = nn.functional.conv2d(flat, k.view(1, 1, 1, 5), stride=(1, 2))[:, :, :, :nc]
    out = nn.functional.conv2d(rows, k.view(1, 1, 5, 1), stride=(2, 1))[:, :, :nr]
    return (out / 256.0).reshape(n, c, nr, nc)


class ChipWarp(nn.Module):
    """Differentiable photo (1, 3, H, W) -> chip (1, 3, size, size) for one :class:`WarpPlan`;
    ``jitter=(dx, dy, scale)`` moves the sampling grid (chip pixels, relative scale)."""

    def __init__(self, plan: WarpPlan) -> None:
        super().__init__()
        self.plan = plan

    def forward(self, photo: torch.Tensor, jitter: tuple[float, float, float] = (0, 0, 1)
                ) -> torch.Tensor:
        p = self.plan
        left, top, right, bottom = p.crop
        img = photo[:, :, top: bottom + 1, left: right + 1]
        for _ in range(p.levels):
            img = _pyramid_down(img)
        h, w = img.shape[2:]
        s = p.size
        idx = torch.arange(s, dtype=photo.dtype, device=photo.device)
        mid = (s - 1) / 2
        cc = (idx[None, :] - mid) * jitter[2] + mid + jitter[0]
        rr = (idx[:, None] - mid) * jitter[2] + mid + jitter[1]
        xs = p.origin[0] + p.ax[0] * cc + p.ay[0] * rr
        ys = p.origin[1] + p.ax[1] * cc + p.ay[1] * rr
        grid = torch.stack([2 * xs / max(w - 1, 1) - 1, 2 * ys / max(h - 1, 1) - 1], dim=-1)
        grid = grid[None].expand(photo.shape[0], s, s, 2)
        out = nn.functional.grid_sample(img, grid, mode="bilinear", padding_mode="zeros",
                                        align_corners=True)
        return out.clamp(0, 1)


def paste_chip_delta(photo: torch.Tensor, chip_delta: torch.Tensor, plan: WarpPlan
                     ) -> torch.Tensor:
    """``photo`` (1, 3, H, W) plus ``chip_delta`` (1, 3, s, s) mapped back through the inverse
    of the chip's affine (bilinear; zero outside the chip), clamped to [0, 1]."""
    h, w = photo.shape[2:]
    aff = plan.photo_affine()
    inv = np.linalg.inv(np.vstack([aff, [0, 0, 1]]))[:2]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing="ij")
    c = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    r = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    s = plan.size
    grid = torch.stack([2 * c / (s - 1) - 1, 2 * r / (s - 1) - 1], dim=-1)[None].to(photo.dtype)
    delta = nn.functional.grid_sample(chip_delta, grid, mode="bilinear", padding_mode="zeros",
                                      align_corners=True)
    return (photo + delta).clamp(0, 1)


class PhotoFaceModel(nn.Module):
    """``model(warp(photo))`` for one photo's plan, optionally averaged over EOT draws."""

    def __init__(self, model: nn.Module, plan: WarpPlan, *, eot_samples: int = 1,
                 shift: float = 1.5, scale: float = 0.03, jpeg: int = 0,
                 seed: int = 0) -> None:
        super().__init__()
        if eot_samples < 1:
            raise ValueError(f"eot_samples must be >= 1, got {eot_samples}")
        self.model, self.warp = model, ChipWarp(plan)
        self.eot_samples, self.shift, self.scale = eot_samples, float(shift), float(scale)
        self.jpeg = None
        if jpeg:
            from facerobust.defenses.transforms import JPEG

            self.jpeg = JPEG(q=jpeg)
        self.gen = torch.Generator().manual_seed(seed)
        for attr in ("metric", "threshold", "embedding_dim", "name"):
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))

    def _draw(self) -> tuple[float, float, float]:
        u = torch.rand(3, generator=self.gen) * 2 - 1
        return (float(u[0]) * self.shift, float(u[1]) * self.shift,
                1.0 + float(u[2]) * self.scale)

    def forward(self, photo: torch.Tensor) -> torch.Tensor:
        if self.eot_samples == 1:
            return self.model(self.warp(photo))
        outs = []
        for _ in range(self.eot_samples):
            x = self.jpeg.bpda(photo) if self.jpeg is not None else photo
            outs.append(self.model(self.warp(x, self._draw())))
        return torch.stack(outs).mean(0)

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.model.distance(a, b)  # type: ignore[operator]
