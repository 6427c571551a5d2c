"""Torch implementations of the ONNX operators face-embedding networks use.

Each op maps ``(inputs, attributes)`` to a list of output tensors with differentiable torch
functions, so gradients reach the network input (see :mod:`facerobust.models.onnx_import`).
Shape arithmetic (Shape, Gather, Unsqueeze, Concat, Reshape) runs on small int64 tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

Inputs = Sequence[torch.Tensor | None]
Op = Callable[[Inputs, dict[str, Any]], list[torch.Tensor]]


def _in(inputs: Inputs, i: int) -> torch.Tensor:
    value = inputs[i] if i < len(inputs) else None
    if value is None:
        raise ValueError(f"input {i} is missing")
    return value


def _opt(inputs: Inputs, i: int) -> torch.Tensor | None:
    return inputs[i] if i < len(inputs) else None


def _ints(t: torch.Tensor | None) -> list[int]:
    return [] if t is None else [int(v) for v in t.reshape(-1).tolist()]


def _spatial_pad(x: torch.Tensor, attrs: dict[str, Any], kernel: list[int],
                 strides: list[int], dilations: list[int], value: float) -> torch.Tensor:
    """Apply ONNX ``pads`` / ``auto_pad`` explicitly (handles asymmetric padding)."""
    n = len(kernel)
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads_begin, pads_end = [], []
        for i in range(n):
            size = x.shape[2 + i]
            out = -(-size // strides[i])
            total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size)
            small, big = total // 2, total - total // 2
            pads_begin.append(small if auto == "SAME_UPPER" else big)
            pads_end.append(big if auto == "SAME_UPPER" else small)
    elif auto == "VALID":
        pads_begin = pads_end = [0] * n
    else:
        pads = list(attrs.get("pads", [0] * (2 * n)))
        pads_begin, pads_end = pads[:n], pads[n:]
    if not any(pads_begin) and not any(pads_end):
        return x
    torch_pad: list[int] = []
    for i in reversed(range(n)):
        torch_pad += [pads_begin[i], pads_end[i]]
    return F.pad(x, torch_pad, value=value)


def conv(inputs: Inputs, attrs: dict[str, Any]) -> list[torch.Tensor]:
    x, w, b = _in(inputs, 0), _in(inputs, 1), _opt(inputs, 2)
    kernel = list(attrs.get("kernel_shape", w.shape[2:]))
    n = len(kernel)
    if n not in (1, 2):
        raise ValueError(f"only 1-D and 2-D convolutions are supported, got {n}-D")
    strides = list(attrs.get("strides", [1] * n))
    dilations = list(attrs.get("dilations", [1] * n))
    x = _spatial_pad(x, attrs, kernel, strides, dilations, 0.0)
    fn = F.conv2d if n == 2 else F.conv1d
    return [fn(x, w, b, stride=strides, dilation=dilations, groups=int(attrs.get("group", 1)))]


def _pool(inputs: Inputs, attrs: dict[str, Any], kind: str) -> list[torch.Tensor]:
    x = _in(inputs, 0)
    kernel = list(attrs["kernel_shape"])
    if len(kernel) != 2:
        raise ValueError(f"only 2-D pooling is supported, got kernel {kernel}")
    strides = list(attrs.get("strides", [1, 1]))
    dilations = list(attrs.get("dilations", [1, 1]))
    ceil = bool(attrs.get("ceil_mode", 0))
    if kind == "max":
        x = _spatial_pad(x, attrs, kernel, strides, dilations, float("-inf"))
        return [F.max_pool2d(x, kernel, strides, dilation=dilations, ceil_mode=ceil)]
    if dilations != [1, 1]:
        raise ValueError("dilated AveragePool is not supported")
    if int(attrs.get("count_include_pad", 0)):
        x = _spatial_pad(x, attrs, kernel, strides, dilations, 0.0)
        return [F.avg_pool2d(x, kernel, strides, ceil_mode=ceil)]
    ones = _spatial_pad(torch.ones_like(x[:1, :1]), attrs, kernel, strides, dilations, 0.0)
    x = _spatial_pad(x, attrs, kernel, strides, dilations, 0.0)
    total = F.avg_pool2d(x, kernel, strides, ceil_mode=ceil)
    return [total / F.avg_pool2d(ones, kernel, strides, ceil_mode=ceil)]


def batch_norm(inputs: Inputs, attrs: dict[str, Any]) -> list[torch.Tensor]:
    x, scale, bias, mean, var = (_in(inputs, i) for i in range(5))
    return [F.batch_norm(x, mean, var, scale, bias, training=False,
                         eps=float(attrs.get("epsilon", 1e-5)))]


def gemm(inputs: Inputs, attrs: dict[str, Any]) -> list[torch.Tensor]:
    a, b, c = _in(inputs, 0), _in(inputs, 1), _opt(inputs, 2)
    if int(attrs.get("transA", 0)):
        a = a.t()
    if int(attrs.get("transB", 0)):
        b = b.t()
    y = float(attrs.get("alpha", 1.0)) * (a @ b)
    if c is not None:
        y = y + float(attrs.get("beta", 1.0)) * c
    return [y]


def reshape(inputs: Inputs, attrs: dict[str, Any]) -> list[torch.Tensor]:
    x, shape = _in(inputs, 0), _ints(_in(inputs, 1))
    if not int(attrs.get("allowzero", 0)):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return [x.reshape(shape)]


def flatten(inputs: Inputs, attrs: dict[str, Any]) -> list[torch.Tensor]:
    x = _in(inputs, 0)
    axis = int(attrs.get("axis", 1)) % (x.ndim or 1)
    lead = 1
    for d in x.shape[:axis]:
        lead *= int(d)
    return [x.reshape(lead, -1)]


def _axes(inputs: Inputs, attrs: dict[str, Any], index: int = 1) -> list[int] | None:
    if "axes" in attrs:
        return list(attrs["axes"])
    given = _opt(inputs, index)
    return None if given is None or given.numel() == 0 else _ints(given)


def _reduce(fn: Callable[..., torch.Tensor]) -> Op:
    def op(inputs: Inputs, attrs: dict[str, Any]) -> list[torch.Tensor]:
        x = _in(inputs, 0)
        axes = _axes(inputs, attrs)
        if axes is None and int(attrs.get("noop_with_empty_axes", 0)):
            return [x]
        dims = list(range(x.ndim)) if axes is None else [a % x.ndim for a in axes]
        return [fn(x, dims, bool(attrs.get("keepdims", 1)))]
    return op


def unsqueeze(inputs: Inputs, attrs: dict[str, Any]) -> list[torch.Tensor]:
    x, axes = _in(inputs, 0), _axes(inputs, attrs) or []
    rank = x.ndim + len(axes)
    for a in sorted(a % rank for a in axes):
        x = x.unsqueeze(a)
    return [x]


def squeeze(inputs: Inputs, attrs: dict[str, Any]) -> list[torch.Tensor]:
    x, axes = _in(inputs, 0), _axes(inputs, attrs)
    if axes is None:
        return [x.squeeze()]
    for a in sorted((a % x.ndim for a in axes), reverse=True):
        x = x.squeeze(a)
    return [x]


def gather(inputs: Inputs, attrs: dict[str, Any]) -> list[torch.Tensor]:
    x, idx = _in(inputs, 0), _in(inputs, 1).long()
    axis = int(attrs.get("axis", 0)) % x.ndim
    idx = torch.where(idx < 0, idx + x.shape[axis], idx)
    out = x.index_select(axis, idx.reshape(-1))
    return [out.reshape((*x.shape[:axis], *idx.shape, *x.shape[axis + 1:]))]


def slice_op(inputs: Inputs, attrs: dict[str, Any]) -> list[torch.Tensor]:
    x = _in(inputs, 0)
    starts, ends = _ints(_in(inputs, 1)), _ints(_in(inputs, 2))
    axes = _ints(_opt(inputs, 3)) or list(range(len(starts)))
    steps = _ints(_opt(inputs, 4)) or [1] * len(starts)
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        if st == 0:
            raise ValueError("Slice with step 0")
        axis = a % x.ndim
        # Python's slice clamping matches ONNX's (incl. INT_MAX / INT_MIN ends)
        picked = range(*slice(s, e, st).indices(x.shape[axis]))
        x = x.index_select(axis, torch.tensor(list(picked), dtype=torch.long, device=x.device))
    return [x]


def pad(inputs: Inputs, attrs: dict[str, Any]) -> list[torch.Tensor]:
    x = _in(inputs, 0)
    pads = _ints(_opt(inputs, 1)) if "pads" not in attrs else list(attrs["pads"])
    value_t = _opt(inputs, 2)
    value = float(value_t.item()) if value_t is not None and value_t.numel() else float(
        attrs.get("value", 0.0))
    mode = attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    n = x.ndim
    torch_pad: list[int] = []
    for i in reversed(range(n)):
        torch_pad += [pads[i], pads[i + n]]
    while len(torch_pad) > 2 and torch_pad[-2:] == [0, 0]:
        torch_pad = torch_pad[:-2]
    modes = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}
    if mode not in modes:
        raise ValueError(f"Pad mode {mode!r} is not supported")
    if mode == "constant":
        return [F.pad(x, torch_pad, value=value)]
    return [F.pad(x, torch_pad, mode=modes[mode])]


def clip(inputs: Inputs, attrs: dict[str, Any]) -> list[torch.Tensor]:
    x, lo, hi = _in(inputs, 0), _opt(inputs, 1), _opt(inputs, 2)
    low = float(lo.item()) if lo is not None else attrs.get("min")
    high = float(hi.item()) if hi is not None else attrs.get("max")
    return [torch.clamp(x, min=low, max=high)]


def prelu(inputs: Inputs, attrs: dict[str, Any]) -> list[torch.Tensor]:
    x, slope = _in(inputs, 0), _in(inputs, 1)
    return [torch.where(x >= 0, x, x * slope)]


def lp_normalization(inputs: Inputs, attrs: dict[str, Any]) -> list[torch.Tensor]:
    x = _in(inputs, 0)
    return [F.normalize(x, p=float(attrs.get("p", 2)), dim=int(attrs.get("axis", -1)), eps=0.0)]


def constant_of_shape(inputs: Inputs, attrs: dict[str, Any]) -> list[torch.Tensor]:
    value = attrs.get("value")
    fill = value.reshape(-1) if isinstance(value, torch.Tensor) else torch.zeros(1)
    return [fill.expand(*_ints(_in(inputs, 0))).clone()]


def expand(inputs: Inputs, attrs: dict[str, Any]) -> list[torch.Tensor]:
    x, shape = _in(inputs, 0), _ints(_in(inputs, 1))
    return [x * torch.ones(shape, dtype=x.dtype, device=x.device)]  # ONNX's two-way broadcast


def _unary(fn: Callable[[torch.Tensor], torch.Tensor]) -> Op:
    return lambda inputs, attrs: [fn(_in(inputs, 0))]


def _binary(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Op:
    return lambda inputs, attrs: [fn(_in(inputs, 0), _in(inputs, 1))]


def _variadic(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Op:
    def op(inputs: Inputs, attrs: dict[str, Any]) -> list[torch.Tensor]:
        out = _in(inputs, 0)
        for i in range(1, len(inputs)):
            out = fn(out, _in(inputs, i))
        return [out]
    return op


def _div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if not a.is_floating_point() and not b.is_floating_point():
        return torch.div(a, b, rounding_mode="trunc")
    return a / b


# onnx.TensorProto data types -> torch dtypes (FLOAT, INT32, INT64, DOUBLE, BOOL, FLOAT16)
CAST_TYPES: dict[int, torch.dtype] = {1: torch.float32, 6: torch.int32, 7: torch.int64,
                                      11: torch.float64, 9: torch.bool, 10: torch.float16}

OPS: dict[str, Op] = {
    "Conv": conv,
    "BatchNormalization": batch_norm,
    "Relu": _unary(F.relu),
    "PRelu": prelu,
    "LeakyRelu": lambda i, a: [F.leaky_relu(_in(i, 0), float(a.get("alpha", 0.01)))],
    "Sigmoid": _unary(torch.sigmoid),
    "Tanh": _unary(torch.tanh),
    "Sqrt": _unary(torch.sqrt),
    "Neg": _unary(torch.neg),
    "Exp": _unary(torch.exp),
    "Abs": _unary(torch.abs),
    "Add": _binary(torch.add),
    "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul),
    "Div": _binary(_div),
    "Pow": _binary(torch.pow),
    "Max": _variadic(torch.maximum),
    "Min": _variadic(torch.minimum),
    "Sum": _variadic(torch.add),
    "Gemm": gemm,
    "MatMul": _binary(torch.matmul),
    "Flatten": flatten,
    "Reshape": reshape,
    "Transpose": lambda i, a: [_in(i, 0).permute(*a["perm"]) if "perm" in a
                               else _in(i, 0).permute(*reversed(range(_in(i, 0).ndim)))],
    "MaxPool": lambda i, a: _pool(i, a, "max"),
    "AveragePool": lambda i, a: _pool(i, a, "avg"),
    "GlobalAveragePool": lambda i, a: [_in(i, 0).mean(dim=(2, 3), keepdim=True)],
    "GlobalMaxPool": lambda i, a: [_in(i, 0).amax(dim=(2, 3), keepdim=True)],
    "Concat": lambda i, a: [torch.cat([t for t in i if t is not None], dim=int(a["axis"]))],
    "Pad": pad,
    "Clip": clip,
    "Identity": _unary(lambda x: x),
    "Dropout": lambda i, a: [_in(i, 0)],
    "Shape": lambda i, a: [torch.tensor(list(_in(i, 0).shape), dtype=torch.int64)
                           [int(a.get("start", 0)):a.get("end")]],
    "Gather": gather,
    "ConstantOfShape": constant_of_shape,
    "Expand": expand,
    "Equal": _binary(torch.eq),
    "Where": lambda i, a: [torch.where(_in(i, 0).bool(), _in(i, 1), _in(i, 2))],
    "Not": _unary(torch.logical_not),
    "Unsqueeze": unsqueeze,
    "Squeeze": squeeze,
    "Slice": slice_op,
    "Cast": lambda i, a: [_in(i, 0).to(CAST_TYPES.get(int(a["to"]), torch.float32))],
    "ReduceL2": _reduce(lambda x, d, k: x.pow(2).sum(dim=d, keepdim=k).sqrt()),
    "ReduceSum": _reduce(lambda x, d, k: x.sum(dim=d, keepdim=k)),
    "ReduceMean": _reduce(lambda x, d, k: x.mean(dim=d, keepdim=k)),
    "ReduceMax": _reduce(lambda x, d, k: x.amax(dim=d, keepdim=k)),
    "LpNormalization": lp_normalization,
    "Softmax": lambda i, a: [torch.softmax(_in(i, 0), dim=int(a.get("axis", -1)))],
}
