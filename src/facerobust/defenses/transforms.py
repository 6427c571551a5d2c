"""Input-transformation defenses (all keep shape and the ``[0, 1]`` range).

Papers: JPEG -- Dziugaite et al. 2016, Das et al. 2017; bit-depth reduction and median
smoothing (feature squeezing) -- Xu, Evans & Qi, NDSS 2018; total-variation minimisation with
random pixel dropout -- Guo et al., ICLR 2018; random resize-and-pad -- Xie et al., ICLR 2018.
All of these are broken by BPDA/EOT (Athalye et al., ICML 2018); facerobust always reports
them against those adaptive attacks too.

>>> import torch
>>> from facerobust.defenses import JPEG, Median
>>> x = torch.rand(2, 3, 150, 150)
>>> JPEG(q=75)(x).shape, Median(k=3)(x).shape
(torch.Size([2, 3, 150, 150]), torch.Size([2, 3, 150, 150]))
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from facerobust.defenses.base import Defense


def _int_in(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def _float_in(name: str, value: Any, lo: float, hi: float, *, open_lo: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value > hi or value < lo or (open_lo and value == lo):
        bracket = "(" if open_lo else "["
        raise ValueError(f"{name} must be in {bracket}{lo:g}, {hi:g}], got {value:g}")
    return value


class JPEG(Defense):
    """JPEG re-compression at quality ``q`` (OpenCV encoder, 4:2:0 chroma).

    Not differentiable; BPDA uses the identity (straight-through), as in Athalye et al.
    """

    name = "jpeg"
    differentiable = False

    def __init__(self, *, q: int = 75) -> None:
        super().__init__()
        self.q = _int_in("q", q, 1, 100)

    def params(self) -> dict[str, Any]:
        return {"q": self.q}

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        t = (x.detach().clamp(0, 1) * 255).round().to(torch.uint8)
        arr = t.permute(0, 2, 3, 1).cpu().numpy()
        out = np.empty_like(arr)
        flags = [int(cv2.IMWRITE_JPEG_QUALITY), self.q]
        for i, img in enumerate(arr):
            if img.shape[2] == 3:
                ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]), flags)
                dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)
                if dec is not None:
                    dec = dec[:, :, ::-1]
            else:
                ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img), flags)
                dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
                if dec is not None:
                    dec = dec.reshape(img.shape)
            if not ok:
                raise RuntimeError("OpenCV failed to JPEG-encode an image")
            if dec is None:
                raise RuntimeError("OpenCV failed to decode a JPEG image")
            out[i] = dec
        y = torch.from_numpy(out).permute(0, 3, 1, 2).to(device=x.device, dtype=x.dtype)
        return y / 255.0


class BitDepth(Defense):
    """Reduce each channel to ``bits`` bits: ``round(x * (2^b - 1)) / (2^b - 1)``.

    Autograd gives zero gradients (rounding); BPDA uses the identity (straight-through).
    """

    name = "bitdepth"
    differentiable = False

    def __init__(self, *, bits: int = 4) -> None:
        super().__init__()
        self.bits = _int_in("bits", bits, 1, 8)

    def params(self) -> dict[str, Any]:
        return {"bits": self.bits}

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        levels = 2**self.bits - 1
        return torch.round(x.clamp(0, 1) * levels) / levels


class Median(Defense):
    """Median filter over ``k x k`` windows per channel (reflect padding).

    Differentiable almost everywhere (the gradient goes to the selected pixel).
    """

    name = "median"

    def __init__(self, *, k: int = 3) -> None:
        super().__init__()
        self.k = _int_in("k", k, 3, 15)
        if self.k % 2 == 0:
            raise ValueError(f"k must be odd, got {k}")

    def params(self) -> dict[str, Any]:
        return {"k": self.k}

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        r = self.k // 2
        padded = F.pad(x, (r, r, r, r), mode="reflect")
        patches = padded.unfold(2, self.k, 1).unfold(3, self.k, 1)  # N,C,H,W,k,k
        return patches.reshape(n, c, h, w, self.k * self.k).median(dim=-1).values


class GaussianBlur(Defense):
    """Gaussian blur with standard deviation ``sigma`` pixels (kernel 2*ceil(3 sigma)+1)."""

    name = "gaussian"
    kernel: torch.Tensor  # buffer (register_buffer)

    def __init__(self, *, sigma: float = 1.0) -> None:
        super().__init__()
        self.sigma = _float_in("sigma", sigma, 0.0, 10.0, open_lo=True)
        radius = max(1, math.ceil(3 * self.sigma))
        t = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel = torch.exp(-(t**2) / (2 * self.sigma**2))
        self.register_buffer("kernel", kernel / kernel.sum(), persistent=False)

    def params(self) -> dict[str, Any]:
        return {"sigma": self.sigma}

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        k = self.kernel.to(dtype=x.dtype, device=x.device)
        r = k.numel() // 2
        if min(x.shape[2:]) <= r:
            raise ValueError(f"sigma={self.sigma:g} is too large for images of {x.shape[2:]}")
        y = F.pad(x, (r, r, 0, 0), mode="reflect")
        y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        y = F.pad(y, (0, 0, r, r), mode="reflect")
        return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c).clamp(0, 1)


class TVM(Defense):
    """Total-variation minimisation with random pixel dropout (Guo et al. 2018).

    Keeps each pixel with probability ``keep`` and reconstructs ``z`` minimising
    ``mean(mask * (z - x)^2) + weight * TV(z)`` by ``steps`` Adam steps (smoothed
    anisotropic TV). Randomised (needs EOT) and not differentiable (BPDA: identity).
    """

    name = "tvm"
    randomized = True
    differentiable = False

    def __init__(self, *, weight: float = 0.03, keep: float = 0.5, steps: int = 10) -> None:
        super().__init__()
        self.weight = _float_in("weight", weight, 0.0, 10.0)
        self.keep = _float_in("keep", keep, 0.0, 1.0, open_lo=True)
        self.steps = _int_in("steps", steps, 1, 1000)

    def params(self) -> dict[str, Any]:
        return {"weight": self.weight, "keep": self.keep, "steps": self.steps}

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        u = torch.rand((n, 1, h, w), generator=self.generator)
        mask = (u < self.keep).to(device=x.device, dtype=x.dtype)
        target = x.detach()
        z = target.clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=0.05)
        with torch.enable_grad():
            for _ in range(self.steps):
                opt.zero_grad()
                fit = (mask * (z - target) ** 2).mean()
                dx = z[:, :, :, 1:] - z[:, :, :, :-1]
                dy = z[:, :, 1:, :] - z[:, :, :-1, :]
                tv = torch.sqrt(dx**2 + 1e-6).mean() + torch.sqrt(dy**2 + 1e-6).mean()
                (fit + self.weight * tv).backward()
                opt.step()
        return z.detach().clamp(0, 1)


class ResizePad(Defense):
    """Random resize-and-pad (Xie et al. 2018), keeping the input size.

    Each image is resized (bilinear) to a random side ``r`` in ``[ceil(H * (1 - scale)), H]``
    and zero-padded at a random offset back to ``H x W``. Randomised (needs EOT);
    differentiable (autograd reaches the input).
    """

    name = "rp"
    randomized = True

    def __init__(self, *, scale: float = 0.1) -> None:
        super().__init__()
        self.scale = _float_in("scale", scale, 0.0, 0.5, open_lo=True)

    def params(self) -> dict[str, Any]:
        return {"scale": self.scale}

    def _draw(self, lo: int, hi: int) -> int:
        return int(torch.randint(lo, hi + 1, (1,), generator=self.generator).item())

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        outs = []
        for img in x.split(1):
            rh = self._draw(max(1, math.ceil(h * (1 - self.scale))), h)
            rw = max(1, round(rh * w / h))
            small = F.interpolate(img, size=(rh, min(rw, w)), mode="bilinear",
                                  align_corners=False)
            top, left = self._draw(0, h - rh), self._draw(0, w - small.shape[3])
            outs.append(F.pad(small, (left, w - small.shape[3] - left, top, h - rh - top)))
        return torch.cat(outs).clamp(0, 1)
