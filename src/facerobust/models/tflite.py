"""Execute a float32 TensorFlow Lite flatbuffer op by op with torch.

The flatbuffer is parsed with the ``tflite`` package (generated from TF's schema); the model's
constant tensors become buffers (so ``.to()`` moves them) and its operators run in file order
(TFLite stores them topologically sorted) through the torch functions below. Tensors keep TF's
NHWC layout between ops, as in :mod:`facerobust.models.tfjs`; everything is differentiable with
respect to the input. Only float32 graphs and the ops face-embedding networks use are
supported; anything else fails at load time naming the operator.

>>> graph = load_tflite(Path("MobileFaceNet.tflite"))   # doctest: +SKIP
>>> graph(torch.rand(2, 112, 112, 3)).shape              # doctest: +SKIP
torch.Size([2, 192])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tflite
import torch
import torch.nn.functional as F
from torch import nn

from facerobust.models.tfjs.ops import same_pad

MAX_TFLITE_BYTES = 512 * 2**20


@dataclass(frozen=True)
class Operator:
    """One TFLite operator: its builtin name, tensor indices and the options it needs."""

    index: int
    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any]


def _enum_names(enum: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_") and isinstance(v, int)}


def _options(tfl: Any, op: Any, name: str) -> dict[str, Any]:
    """Padding, strides and fused activation of conv ops; new shape of RESHAPE."""
    table = op.BuiltinOptions()
    if table is None:
        return {}
    act_names = _enum_names(tfl.ActivationFunctionType)
    pad_names = _enum_names(tfl.Padding)
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        cls = tfl.Conv2DOptions if name == "CONV_2D" else tfl.DepthwiseConv2DOptions
        o = cls()
        o.Init(table.Bytes, table.Pos)
        return {"padding": pad_names[o.Padding()], "stride": (o.StrideH(), o.StrideW()),
                "dilation": (o.DilationHFactor(), o.DilationWFactor()),
                "activation": act_names[o.FusedActivationFunction()]}
    if name in ("ADD", "SUB", "MUL"):
        cls = {"ADD": tfl.AddOptions, "SUB": tfl.SubOptions, "MUL": tfl.MulOptions}[name]
        o = cls()
        o.Init(table.Bytes, table.Pos)
        return {"activation": act_names[o.FusedActivationFunction()]}
    return {}


def _activation(x: torch.Tensor, name: str, where: str) -> torch.Tensor:
    if name == "NONE":
        return x
    if name == "RELU":
        return F.relu(x)
    if name == "RELU6":
        return x.clamp(0.0, 6.0)
    raise ValueError(f"{where}: fused activation {name} is not supported")


def _conv(op: Operator, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
          depthwise: bool) -> torch.Tensor:
    cout, kh, kw, cin = (int(s) for s in w.shape)
    stride, dil = op.options["stride"], op.options["dilation"]
    where = f"operator {op.index} ({op.op})"
    if not depthwise and kh == kw == 1 and stride == (1, 1) and x.shape[3] == cin:
        y = x @ w.reshape(cout, cin).t()  # pointwise: one NHWC matmul, no layout change
        return _activation(y if b is None else y + b, op.options["activation"], where)
    xn = x.permute(0, 3, 1, 2)
    if op.options["padding"] == "SAME":
        ph = same_pad(xn.shape[2], kh, stride[0], dil[0])
        pw = same_pad(xn.shape[3], kw, stride[1], dil[1])
        xn = F.pad(xn, (pw[0], pw[1], ph[0], ph[1]))
    if depthwise:  # TFLite depthwise weights are [1, kh, kw, cin * multiplier]
        weight, groups = w.permute(3, 0, 1, 2), xn.shape[1]
    else:  # [cout, kh, kw, cin]
        weight, groups = w.permute(0, 3, 1, 2), 1
    y = F.conv2d(xn, weight, b, stride=stride, dilation=dil, groups=groups)
    return _activation(y.permute(0, 2, 3, 1), op.options["activation"], where)


OpFn = Callable[[Operator, list[torch.Tensor | None]], torch.Tensor]


def _need(xs: list[torch.Tensor | None], i: int, op: Operator) -> torch.Tensor:
    t = xs[i]
    if t is None:
        raise ValueError(f"operator {op.index} ({op.op}): input {i} is missing")
    return t


def _binary(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> OpFn:
    def run(op: Operator, xs: list[torch.Tensor | None]) -> torch.Tensor:
        y = fn(_need(xs, 0, op), _need(xs, 1, op))
        return _activation(y, op.options.get("activation", "NONE"), f"operator {op.index}")

    return run


def _reshape(op: Operator, xs: list[torch.Tensor | None]) -> torch.Tensor:
    x, shape = _need(xs, 0, op), _need(xs, 1, op)
    dims = [int(s) for s in shape.reshape(-1).tolist()]
    return x.reshape(x.shape[0], *dims[1:])  # the batch dimension follows the input


OPS: dict[str, OpFn] = {
    "CONV_2D": lambda op, xs: _conv(op, _need(xs, 0, op), _need(xs, 1, op), xs[2], False),
    "DEPTHWISE_CONV_2D": lambda op, xs: _conv(op, _need(xs, 0, op), _need(xs, 1, op), xs[2],
                                              True),
    "ADD": _binary(torch.add),
    "SUB": _binary(torch.sub),
    "MUL": _binary(torch.mul),
    "RELU": lambda op, xs: F.relu(_need(xs, 0, op)),
    "RELU6": lambda op, xs: _need(xs, 0, op).clamp(0.0, 6.0),
    "ABS": lambda op, xs: _need(xs, 0, op).abs(),
    "PRELU": lambda op, xs: torch.where(_need(xs, 0, op) < 0,
                                        _need(xs, 1, op) * _need(xs, 0, op), _need(xs, 0, op)),
    "RESHAPE": _reshape,
    "L2_NORMALIZATION": lambda op, xs: F.normalize(_need(xs, 0, op), dim=-1),
}


class TFLiteGraph(nn.Module):
    """A parsed TFLite subgraph; ``forward(x)`` maps the NHWC input to the first output."""

    def __init__(self, operators: list[Operator], constants: dict[int, np.ndarray],
                 input_index: int, output_index: int, output_name: str = "output") -> None:
        super().__init__()
        self.output_names = [output_name]
        for op in operators:
            if op.op not in OPS:
                raise ValueError(f"operator {op.index}: {op.op} is not supported "
                                 f"(supported: {', '.join(sorted(OPS))})")
        self.operators = operators
        self.input_index = input_index
        self.output_index = output_index
        self._const_attr: dict[int, str] = {}
        for index, value in constants.items():
            attr = f"const_{index}"
            self.register_buffer(attr, torch.from_numpy(value.copy()), persistent=False)
            self._const_attr[index] = attr

    def constants(self) -> dict[int, torch.Tensor]:
        """The value of every constant tensor, by tensor index."""
        return {index: getattr(self, attr) for index, attr in self._const_attr.items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[int, torch.Tensor] = {self.input_index: x}
        for index, attr in self._const_attr.items():
            values[index] = getattr(self, attr)
        for op in self.operators:
            xs = [values[i] if i >= 0 else None for i in op.inputs]
            values[op.outputs[0]] = OPS[op.op](op, xs)
        return values[self.output_index]


def load_tflite(path: Path) -> TFLiteGraph:
    """Parse ``path`` (a float32 .tflite file) into a :class:`TFLiteGraph`."""

    size = path.stat().st_size
    if size > MAX_TFLITE_BYTES:
        raise ValueError(f"{path}: {size} bytes is larger than the {MAX_TFLITE_BYTES} allowed")
    buf = path.read_bytes()
    if buf[4:8] != b"TFL3":
        raise ValueError(f"{path}: not a TFLite flatbuffer (file identifier {buf[4:8]!r})")
    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() != 1:
        raise ValueError(f"{path}: {model.SubgraphsLength()} subgraphs; exactly one is supported")
    graph = model.Subgraphs(0)
    if graph.InputsLength() != 1:
        raise ValueError(f"{path}: {graph.InputsLength()} inputs; exactly one is supported")
    op_names = _enum_names(tflite.BuiltinOperator)
    operators: list[Operator] = []
    for i in range(graph.OperatorsLength()):
        raw = graph.Operators(i)
        code = model.OperatorCodes(raw.OpcodeIndex())
        name = op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        operators.append(Operator(i, name, tuple(int(t) for t in raw.InputsAsNumpy()),
                                  tuple(int(t) for t in raw.OutputsAsNumpy()),
                                  _options(tflite, raw, name)))
    constants = _constants(tflite, model, graph, path)
    output = int(graph.OutputsAsNumpy()[0])
    return TFLiteGraph(operators, constants, int(graph.InputsAsNumpy()[0]), output,
                       graph.Tensors(output).Name().decode())


def _constants(tfl: Any, model: Any, graph: Any, path: Path) -> dict[int, np.ndarray]:
    """Tensors backed by a non-empty buffer, as numpy arrays (float32 or int32 only)."""
    dtypes = {tfl.TensorType.FLOAT32: np.float32, tfl.TensorType.INT32: np.int32}
    constants: dict[int, np.ndarray] = {}
    for index in range(graph.TensorsLength()):
        tensor = graph.Tensors(index)
        data = model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(data, int) or len(data) == 0:  # no data: an activation tensor
            continue
        if tensor.Type() not in dtypes:
            raise ValueError(f"{path}: tensor {tensor.Name().decode()!r} has type "
                             f"{tensor.Type()}; only float32 and int32 constants are supported")
        shape = [int(s) for s in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []
        constants[index] = np.frombuffer(data.tobytes(), dtype=dtypes[tensor.Type()]).reshape(shape)
    return constants
