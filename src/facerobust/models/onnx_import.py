"""An ONNX graph as a differentiable torch module (our own small converter; needs ``onnx``).

The graph's initializers become buffers; ``forward`` runs the nodes in their (topological)
file order with the torch ops of :mod:`facerobust.models.onnx_ops`, so every attack's
gradient reaches the network input. Unsupported ops are refused at import, naming the op and
the node. ``onnxruntime_outputs`` runs the same file in onnxruntime, the reference the import
is checked against.

>>> net = import_onnx("arcface.onnx")          # doctest: +SKIP
>>> net(torch.rand(1, 3, 112, 112)).shape      # doctest: +SKIP
torch.Size([1, 512])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facerobust.models.onnx_ops import OPS


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError("reading ONNX models needs the onnx package: "
                          "pip install 'facerobust[onnx]'") from None
    return onnx


@dataclass(frozen=True)
class OnnxNode:
    """One graph node: op, its input and output value names, its attributes."""

    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]


class OnnxModule(nn.Module):
    """Run an ONNX graph with torch ops; ``forward(x)`` takes the single graph input."""

    def __init__(self, nodes: list[OnnxNode], constants: dict[str, torch.Tensor],
                 input_name: str, output_names: list[str],
                 input_shape: tuple[int | None, ...]) -> None:
        super().__init__()
        self.nodes = nodes
        self.input_name = input_name
        self.output_names = output_names
        self.input_shape = input_shape  # None = a free (symbolic) dimension
        self.constant_names = list(constants)
        for i, tensor in enumerate(constants.values()):
            self.register_buffer(f"c{i}", tensor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[str, torch.Tensor | None] = {"": None, self.input_name: x}
        for i, name in enumerate(self.constant_names):
            values[name] = getattr(self, f"c{i}")
        for node in self.nodes:
            try:
                outs = OPS[node.op]([values[n] for n in node.inputs], node.attrs)
            except (ValueError, RuntimeError, KeyError, IndexError, TypeError) as err:
                raise ValueError(f"ONNX node {node.name!r} ({node.op}): {err}") from err
            values.update(zip(node.outputs, outs, strict=False))
        out = values[self.output_names[0]]
        if out is None:
            raise ValueError(f"ONNX output {self.output_names[0]!r} was not computed")
        return out


def _attributes(node: Any, onnx: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        if isinstance(value, onnx.TensorProto):
            value = torch.from_numpy(np.array(onnx.numpy_helper.to_array(value)))
        elif isinstance(value, list):
            value = list(value)
        attrs[attr.name] = value
    return attrs


def _constant(node: Any, onnx: Any, where: str) -> torch.Tensor:
    attrs = _attributes(node, onnx)
    if "value" in attrs:
        return torch.as_tensor(attrs["value"])
    for key, dtype in (("value_float", torch.float32), ("value_floats", torch.float32),
                       ("value_int", torch.int64), ("value_ints", torch.int64)):
        if key in attrs:
            return torch.tensor(attrs[key], dtype=dtype)
    raise ValueError(f"{where}: Constant with attributes {sorted(attrs)} is not supported")


def import_onnx(path: str | Path) -> OnnxModule:
    """The ONNX model at ``path`` as an :class:`OnnxModule` (``ValueError`` on an unsupported
    op, naming it and the node, or on a graph with several inputs)."""
    onnx = _onnx()
    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as err:  # onnx raises DecodeError and friends
        raise ValueError(f"{path}: not a readable ONNX model ({err})") from None
    graph = model.graph
    constants = {init.name: torch.from_numpy(np.array(onnx.numpy_helper.to_array(init)))
                 for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1:
        raise ValueError(f"{path}: expected one graph input (the image), got "
                         f"{[i.name for i in inputs]}")
    nodes: list[OnnxNode] = []
    for k, node in enumerate(graph.node):
        name = node.name or f"#{k}"
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            constants[node.output[0]] = _constant(node, onnx, f"{path}: node {name!r}")
            continue
        if node.domain not in ("", "ai.onnx") or node.op_type not in OPS:
            raise ValueError(f"{path}: unsupported ONNX op {node.op_type!r} in node {name!r} "
                             f"(supported: {', '.join(sorted(OPS))})")
        nodes.append(OnnxNode(name, node.op_type, tuple(node.input), tuple(node.output),
                              _attributes(node, onnx)))
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(int(d.dim_value) if d.HasField("dim_value") else None for d in dims)
    return OnnxModule(nodes, constants, inputs[0].name, [o.name for o in graph.output], shape)


def onnxruntime_outputs(path: str | Path, x: np.ndarray) -> np.ndarray:
    """The first output of onnxruntime on ``x`` (the reference for the import)."""
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("checking an ONNX import needs onnxruntime: "
                          "pip install 'facerobust[onnx]'") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.asarray(session.run(None, {name: x.astype(np.float32)})[0])
