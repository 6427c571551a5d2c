"""Tiny seeded networks exported to ONNX / TorchScript, and spec files for them (tests of
your-own-model specs)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class TinyArcFace(nn.Module):
    """An ArcFace-layout network in miniature (112x112 NCHW in, (x - 127.5) / 128 scale):
    conv-BN-PReLU stem, depthwise block, a side branch of pools and activations, flatten,
    linear, BN1d; L2-normalised output. Covers the ops face nets export to."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.PReLU(8))
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, groups=8), nn.BatchNorm2d(8),
                                nn.PReLU(8), nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8))
        self.side = nn.Conv2d(8, 4, 3, padding=0)
        self.fc = nn.Linear(12 * 7 * 7, dim)
        self.bn = nn.BatchNorm1d(dim)
        for bn in (*[m for m in self.modules() if isinstance(m, nn.BatchNorm2d)], self.bn):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        y = y + self.dw(y)  # (N, 8, 56, 56)
        side = F.leaky_relu(self.side(F.pad(y, (1, 1, 1, 1), mode="reflect")), 0.1)
        side = torch.sigmoid(side) * torch.clamp(side, -1.0, 1.0)
        y = torch.cat([F.max_pool2d(y, 3, 2, ceil_mode=True),
                       F.avg_pool2d(side, 3, 2, 1, count_include_pad=False)], 1)
        y = F.adaptive_avg_pool2d(y, 7).flatten(1)
        return F.normalize(self.bn(self.fc(y)), dim=1)


def export_onnx(net: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """``net`` to ONNX (TorchScript-based exporter, dynamic batch)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (example,), str(path), dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    return path


def export_torchscript(net: nn.Module, example: torch.Tensor, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(net.eval(), example).save(str(path))
    return path


ARCFACE_INPUT = """[input]
size = 112
template = "arcface-112"
colour = "bgr"
scale = 255.0
mean = [127.5, 127.5, 127.5]
std = [128.0, 128.0, 128.0]
"""


def write_spec(path: Path, *, model: str, input: str = ARCFACE_INPUT,
               output: str = '[output]\nmetric = "cosine"\nthreshold = 0.5\n',
               extra: str = "") -> Path:
    """A spec file from its tables' text (``model`` is the [model] body)."""
    path.write_text(f"[model]\n{model}\n{input}\n{output}\n{extra}", encoding="utf-8")
    return path
