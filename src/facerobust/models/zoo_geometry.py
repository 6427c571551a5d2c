"""Fixed, differentiable resampling from the canonical dlib chip to another model's input.

The canonical chip is ``dlib.get_face_chip(img, shape5, size=150, padding=0.25)``. dlib places
the face with its mean face shape (68-point template, points 17..67, normalised to the unpadded
face square); a template point ``p`` lands at ``(padding + p) / (1 + 2 padding) * size`` in the
chip (pixel centres at integer coordinates). We read the five ArcFace landmarks (eye centres,
nose tip, mouth corners) off that template, fit the least-squares similarity onto a target
template (e.g. the ArcFace 112x112 one) and resample with ``F.affine_grid``/``F.grid_sample``
(bilinear), so gradients flow back to the canonical chip.

>>> warp = ChipWarp(arcface_similarity(112), (112, 112))   # doctest: +SKIP
>>> warp(chips).shape                                         # doctest: +SKIP
torch.Size([N, 3, 112, 112])
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CANONICAL_SIZE = 150
CANONICAL_PADDING = 0.25

# dlib mean face (unpadded unit square): eye landmarks 36-41 / 42-47, nose tip 30, mouth 48/54.
_LEFT_EYE = [(0.121737, 0.216423), (0.187122, 0.178758), (0.265825, 0.179852),
             (0.334606, 0.231733), (0.260918, 0.245099), (0.182743, 0.244077)]
_RIGHT_EYE = [(0.645647, 0.231733), (0.714428, 0.179852), (0.793132, 0.178758),
              (0.858516, 0.216423), (0.79751, 0.244077), (0.719335, 0.245099)]
_NOSE_TIP = (0.490127, 0.515625)
_MOUTH_LEFT = (0.254149, 0.780233)
_MOUTH_RIGHT = (0.726104, 0.780233)

# ArcFace / insightface 5-point template for 112x112 crops (pixel coordinates).
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)


def canonical_five_points(size: int = CANONICAL_SIZE,
                          padding: float = CANONICAL_PADDING) -> np.ndarray:
    """ArcFace-ordered 5 landmarks (eyes, nose tip, mouth corners) in canonical chip pixels."""
    unit = np.array([np.mean(_LEFT_EYE, axis=0), np.mean(_RIGHT_EYE, axis=0), _NOSE_TIP,
                     _MOUTH_LEFT, _MOUTH_RIGHT], dtype=np.float64)
    return (padding + unit) / (1 + 2 * padding) * size


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (Umeyama, no reflection) mapping ``src`` onto ``dst``."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need two matching (K>=2, 2) point sets, got {src.shape}, {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ fix @ vt
    scale = np.trace(np.diag(sig) @ fix) / s.var(0).sum()
    mat = np.zeros((2, 3))
    mat[:, :2] = scale * rot
    mat[:, 2] = mu_d - scale * rot @ mu_s
    return mat


def arcface_similarity(size: int = 112) -> np.ndarray:
    """Canonical-chip pixels -> ArcFace ``size`` x ``size`` crop pixels (2x3)."""
    return fit_similarity(canonical_five_points(), ARCFACE_112 * (size / 112.0))


def box_similarity(box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """Map the canonical-chip box ``(x0, y0, x1, y1)`` (pixel edges) onto a ``size`` crop."""
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box must have x1 > x0 and y1 > y0, got {box}")
    sx, sy = size / (x1 - x0), size / (y1 - y0)
    # pixel edges: canonical edge x0 -> output edge 0 (centres are edges + 0.5).
    return np.array([[sx, 0.0, (0.5 - x0) * sx - 0.5], [0.0, sy, (0.5 - y0) * sy - 0.5]])


def _theta(mat: np.ndarray, out_hw: tuple[int, int], in_hw: tuple[int, int]) -> np.ndarray:
    """affine_grid theta (align_corners=False) for the forward pixel map ``mat`` (in -> out)."""
    full = np.vstack([mat, [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(full)  # output pixel -> input pixel
    (ho, wo), (hi, wi) = out_hw, in_hw
    out_from_norm = np.array([[wo / 2, 0, (wo - 1) / 2], [0, ho / 2, (ho - 1) / 2], [0, 0, 1]])
    norm_from_in = np.array([[2 / wi, 0, 1 / wi - 1], [0, 2 / hi, 1 / hi - 1], [0, 0, 1]])
    return (norm_from_in @ inv @ out_from_norm)[:2]


class ChipWarp(nn.Module):
    """Resample canonical chips (N,3,150,150) to ``out_hw`` with the fixed pixel map ``mat``."""

    matrix: torch.Tensor  # buffers (register_buffer)
    theta: torch.Tensor

    def __init__(self, mat: np.ndarray, out_hw: tuple[int, int],
                 in_hw: tuple[int, int] = (CANONICAL_SIZE, CANONICAL_SIZE)) -> None:
        super().__init__()
        self.out_hw = cast(tuple[int, int], tuple(out_hw))
        self.in_hw = cast(tuple[int, int], tuple(in_hw))
        self.register_buffer("matrix", torch.tensor(np.asarray(mat), dtype=torch.float64),
                             persistent=False)
        theta = torch.tensor(_theta(np.asarray(mat), self.out_hw, self.in_hw), dtype=torch.float32)
        self.register_buffer("theta", theta, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[2:]) != self.in_hw:
            raise ValueError(f"expected input size {self.in_hw}, got {tuple(x.shape[2:])}")
        theta = self.theta.to(x.dtype).unsqueeze(0).expand(x.shape[0], 2, 3)
        grid = F.affine_grid(theta, [x.shape[0], x.shape[1], *self.out_hw], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
