"""Your own network (ONNX, TorchScript or Python) as a :class:`FaceModel`, built from a spec.

The spec's preprocessing is part of the model: ``forward`` warps the canonical chip onto the
network's template (:mod:`facerobust.models.zoo_geometry`), reorders colours, applies
``(x * scale - mean) / std`` and the layout, all differentiable, so every attack, defense,
detector and the gate use the model unchanged. The threshold is ``output.threshold`` or the
one ``facerobust models calibrate`` wrote into the card beside the spec.

>>> net = load_spec_model("my-arcface.toml")     # doctest: +SKIP
>>> net(chips).shape                             # doctest: +SKIP
torch.Size([N, 512])
"""

from __future__ import annotations

import importlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facerobust.models.base import CANONICAL_SIZE, FaceModel
from facerobust.models.onnx_import import OnnxModule, import_onnx
from facerobust.models.spec_file import InputSection, ModelFileSpec, read_model_spec
from facerobust.models.zoo_geometry import (
    ChipWarp,
    arcface_similarity,
    box_similarity,
    canonical_five_points,
    fit_similarity,
)
from facerobust.paths import user_models_dir

# FaceNet-style crops (a detector box plus a margin, 160x160) hold more than dlib's face
# square: the canonical chip's central 125 pixels (face square 100 px, ~1/8 margin each side).
FACENET_BOX = (12.5, 12.5, 137.5, 137.5)


def template_matrix(inp: InputSection) -> np.ndarray | None:
    """Canonical-chip pixels -> network-input pixels (2x3), ``None`` for the chip itself."""
    if inp.template == "dlib-chip":
        return None if inp.size == CANONICAL_SIZE else box_similarity(
            (0.0, 0.0, float(CANONICAL_SIZE), float(CANONICAL_SIZE)), inp.size)
    if inp.template == "arcface-112":
        return arcface_similarity(inp.size)
    if inp.template == "facenet-160":
        return box_similarity(FACENET_BOX, inp.size)
    return fit_similarity(canonical_five_points(), np.array(inp.landmarks, dtype=np.float64))


class SpecModel(FaceModel):
    """A user network behind the canonical-chip contract, preprocessing included."""

    mean: torch.Tensor  # buffers (register_buffer)
    std: torch.Tensor

    def __init__(self, spec: ModelFileSpec, network: nn.Module, threshold: float) -> None:
        super().__init__()
        self.spec = spec
        self.name = spec.name
        self.metric = "cosine" if spec.output.metric == "cosine" else "euclidean"
        self.threshold = float(threshold)
        inp = spec.input
        mat = template_matrix(inp)
        self.warp = None if mat is None else ChipWarp(mat, (inp.size, inp.size))
        self.register_buffer("mean", torch.tensor(inp.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(inp.std).view(1, 3, 1, 1), persistent=False)
        self.network = network.eval()

    def network_input(self, x: torch.Tensor) -> torch.Tensor:
        """The tensor the network sees for canonical chips ``x``."""
        self.check_input(x)
        inp = self.spec.input
        y = x if self.warp is None else self.warp(x)
        if inp.colour == "bgr":
            y = y.flip(1)
        y = (y * inp.scale - self.mean) / self.std
        return y.permute(0, 2, 3, 1) if inp.layout == "nhwc" else y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.network(self.network_input(x))
        if isinstance(out, (tuple, list)):
            out = out[0]
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"model {self.name!r}: the network returned a "
                            f"{type(out).__name__}, not a tensor")
        return out.reshape(out.shape[0], -1)


def load_network(spec: ModelFileSpec) -> nn.Module:
    """The bare network named by the spec (errors name the spec file and key)."""
    path, fmt = spec.file_path(), spec.model.format
    where = f"{spec.path}: model.file {path}"
    if fmt == "onnx":
        net = import_onnx(_required(path, spec))
        _check_onnx_input(net, spec)
        return net
    if fmt == "torchscript":
        try:
            with warnings.catch_warnings():  # torch 2.13 marks jit.load deprecated
                warnings.simplefilter("ignore", DeprecationWarning)
                return torch.jit.load(str(_required(path, spec)), map_location="cpu")
        except RuntimeError as err:
            raise ValueError(f"{where}: not a TorchScript file ({str(err).splitlines()[0]})"
                             ) from None
    module, _, attr = spec.model.entry.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{spec.path}: model.entry {spec.model.entry!r}: cannot import it "
                         f"({err})") from None
    net = factory(str(path)) if path is not None else factory()
    if not isinstance(net, nn.Module):
        raise ValueError(f"{spec.path}: model.entry {spec.model.entry!r} built a "
                         f"{type(net).__name__}, not a torch module")
    return net


def _required(path: Path | None, spec: ModelFileSpec) -> Path:
    if path is None:
        raise ValueError(f"{spec.path}: model.file is required for format "
                         f"{spec.model.format!r}")
    return path


def _check_onnx_input(net: OnnxModule, spec: ModelFileSpec) -> None:
    inp = spec.input
    want = (3, inp.size, inp.size) if inp.layout == "nchw" else (inp.size, inp.size, 3)
    got = net.input_shape[1:]
    if len(net.input_shape) != 4 or any(g is not None and g != w
                                        for g, w in zip(got, want, strict=True)):
        shape = ["?" if d is None else d for d in net.input_shape]
        raise ValueError(f"{spec.path}: input.size {inp.size} ({inp.layout}) does not match the "
                         f"ONNX input {net.input_name!r} of shape {shape}")


def read_card(spec: ModelFileSpec) -> dict[str, Any] | None:
    """The calibration card beside the spec, if any."""
    path = spec.card_path()
    if not path.is_file():
        return None
    try:
        card: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path}: not a valid model card ({err})") from None
    return card


def spec_threshold(spec: ModelFileSpec, *, required: bool = True) -> float:
    """``output.threshold``, else the calibrated card's threshold, else an error (or 0 when
    not ``required``, as calibration itself needs)."""
    if spec.output.threshold > 0:
        return spec.output.threshold
    card = read_card(spec)
    if card is not None and float(card.get("threshold", 0)) > 0:
        return float(card["threshold"])
    if required:
        raise ValueError(f"{spec.path}: no output.threshold and no calibrated card "
                         f"{spec.card_path().name}; set output.threshold or run "
                         f"`facerobust models calibrate {spec.path}`")
    return 0.0


def build_spec_model(spec: ModelFileSpec, *, require_threshold: bool = True) -> SpecModel:
    """Load the network, wrap it, and check on one chip that it returns one descriptor per
    chip of the declared size (``output.size``)."""
    threshold = spec_threshold(spec, required=require_threshold)
    model = SpecModel(spec, load_network(spec), threshold)
    try:
        with torch.no_grad():
            probe = model(torch.full((2, 3, CANONICAL_SIZE, CANONICAL_SIZE), 0.5))
    except (RuntimeError, ValueError, TypeError) as err:
        raise ValueError(f"{spec.path}: the network fails on its input "
                         f"({str(err).splitlines()[0]})") from None
    dim = int(probe.shape[1])
    if probe.shape[0] != 2:
        raise ValueError(f"{spec.path}: the network returned {tuple(probe.shape)} for 2 chips "
                         "(one descriptor per chip expected)")
    if spec.output.size and dim != spec.output.size:
        raise ValueError(f"{spec.path}: output.size is {spec.output.size} but the network "
                         f"returns {dim}-d descriptors")
    model.embedding_dim = dim
    return model


def load_spec_model(path: str | Path, *, require_threshold: bool = True) -> SpecModel:
    """Read, validate and build the model described by the spec file at ``path``."""
    return build_spec_model(read_model_spec(path), require_threshold=require_threshold)


def user_spec_path(name: str) -> Path | None:
    """The spec of a model registered by ``facerobust models add``, if ``name`` is one."""
    path = user_models_dir(create=False) / f"{name}.toml"
    return path if "/" not in name and path.is_file() else None
