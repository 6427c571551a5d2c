"""Write my-net.onnx (a tiny seeded ArcFace-shaped network, 112x112 -> 16-d) and its spec
my-net.toml into the current folder: a stand-in for your own model (docs/models.md)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import torch
from torch import nn

torch.manual_seed(0)
net = nn.Sequential(
    nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.PReLU(8),
    nn.Conv2d(8, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.PReLU(16),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 16),
).eval()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # torch's note on the TorchScript-based exporter
    torch.onnx.export(net, (torch.rand(1, 3, 112, 112),), "my-net.onnx", dynamo=False,
                      input_names=["image"], output_names=["embedding"],
                      dynamic_axes={"image": {0: "n"}, "embedding": {0: "n"}})
shutil.copyfile(Path(__file__).with_name("my-net.toml"), "my-net.toml")
print("wrote my-net.onnx and my-net.toml")
