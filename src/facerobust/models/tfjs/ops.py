"""TensorFlow ops as torch functions, with TF's NHWC semantics.

Every op takes ``(node, inputs)`` where ``inputs`` are torch tensors in the node's input order
and returns one tensor. Convolutions run through ``F.conv2d`` on channels-last views, so the
tensors between ops keep TF's logical NHWC layout (reshape/squeeze/reduction axes stay valid).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from facerobust.models.tfjs.nodes import Node

OpFn = Callable[[Node, list[torch.Tensor]], torch.Tensor]


def same_pad(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF 'SAME' padding (before, after) along one axis."""
    eff = (k - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def _conv(node: Node, x: torch.Tensor, w: torch.Tensor, depthwise: bool) -> torch.Tensor:
    fmt = node.attr_str("data_format", "NHWC")
    if fmt != "NHWC":
        raise ValueError(f"node {node.name!r} ({node.op}): data_format {fmt!r} is not supported")
    strides = node.attr_ints("strides", [1, 1, 1, 1])
    dil = node.attr_ints("dilations", [1, 1, 1, 1])
    kh, kw, cin, cout = (int(s) for s in w.shape)
    padding = node.attr_str("padding", "VALID")
    if (not depthwise and kh == kw == 1 and x.shape[3] == cin and padding in ("SAME", "VALID")
            and strides[1] == strides[2] == 1):  # pointwise: one NHWC matmul, no layout change
        return x @ w.reshape(cin, cout)
    xn = x.permute(0, 3, 1, 2)
    if padding == "SAME":
        ph = same_pad(xn.shape[2], kh, strides[1], dil[1])
        pw = same_pad(xn.shape[3], kw, strides[2], dil[2])
        xn = F.pad(xn, (pw[0], pw[1], ph[0], ph[1]))
    elif padding == "EXPLICIT":
        p = node.attr_ints("explicit_paddings", [])
        xn = F.pad(xn, (p[4], p[5], p[2], p[3]))
    elif padding != "VALID":
        raise ValueError(f"node {node.name!r} ({node.op}): padding {padding!r} is not supported")
    if depthwise:
        weight = w.permute(2, 3, 0, 1).reshape(cin * cout, 1, kh, kw)
        groups = cin
    else:
        weight = w.permute(3, 2, 0, 1)
        groups = xn.shape[1] // cin
    y = F.conv2d(xn, weight, stride=(strides[1], strides[2]), dilation=(dil[1], dil[2]),
                 groups=groups)
    return y.permute(0, 2, 3, 1)


def _activation(name: str, node: Node, x: torch.Tensor, arg: torch.Tensor | None) -> torch.Tensor:
    if name == "Relu":
        return F.relu(x)
    if name == "Relu6":
        return x.clamp(0.0, 6.0)
    if name == "Elu":
        return F.elu(x)
    if name == "Sigmoid":
        return torch.sigmoid(x)
    if name == "Tanh":
        return torch.tanh(x)
    if name == "LeakyRelu":
        return F.leaky_relu(x, node.attr_float("leakyrelu_alpha", node.attr_float("alpha", 0.2)))
    if name == "Prelu":
        if arg is None:
            raise ValueError(f"node {node.name!r}: fused Prelu needs an alpha input")
        return torch.where(x < 0, arg * x, x)
    raise ValueError(f"node {node.name!r} ({node.op}): unsupported fused op {name!r}")


def _fused(node: Node, y: torch.Tensor, extra: list[torch.Tensor]) -> torch.Tensor:
    ops = node.attr_strs("fused_ops", [])
    args = list(extra)
    for name in ops:
        if name == "BiasAdd":
            if not args:
                raise ValueError(f"node {node.name!r}: fused BiasAdd without a bias input")
            y = y + args.pop(0)
        else:
            y = _activation(name, node, y, args.pop(0) if name == "Prelu" and args else None)
    return y


def _matmul(node: Node, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if node.attr_bool("transpose_a", False):
        a = a.transpose(-1, -2)
    if node.attr_bool("transpose_b", False):
        b = b.transpose(-1, -2)
    return a @ b


def _axes(t: torch.Tensor, rank: int) -> list[int]:
    values = t.reshape(-1).tolist()
    return sorted(int(a) % rank for a in values)


def _reduce(fn: Callable[..., torch.Tensor]) -> OpFn:
    def op(node: Node, xs: list[torch.Tensor]) -> torch.Tensor:
        x, axes = xs[0], _axes(xs[1], xs[0].ndim)
        keep = node.attr_bool("keep_dims", False)
        if not axes:
            return x
        return fn(x, dim=axes, keepdim=keep)

    return op


def _squeeze(node: Node, xs: list[torch.Tensor]) -> torch.Tensor:
    x = xs[0]
    dims = node.attr_ints("squeeze_dims", [])
    if not dims:
        return x.squeeze()
    for d in sorted((d % x.ndim for d in dims), reverse=True):
        if x.shape[d] != 1:
            raise ValueError(f"node {node.name!r}: cannot squeeze axis {d} of {tuple(x.shape)}")
        x = x.squeeze(d)
    return x


def _pad(node: Node, xs: list[torch.Tensor]) -> torch.Tensor:
    x, pads = xs[0], xs[1].reshape(-1, 2).tolist()
    value = float(xs[2].reshape(-1)[0]) if len(xs) > 2 else 0.0
    flat: list[int] = []
    for before, after in reversed(pads):
        flat += [int(before), int(after)]
    return F.pad(x, flat, value=value)


def _reshape(node: Node, xs: list[torch.Tensor]) -> torch.Tensor:
    shape = [int(s) for s in xs[1].reshape(-1).tolist()]
    return xs[0].reshape(shape)


def _binary(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> OpFn:
    return lambda node, xs: fn(xs[0], xs[1])


def _extremum(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], bound: str) -> OpFn:
    """Maximum/Minimum; against a scalar constant it is a clamp, whose backward is far cheaper
    than torch.maximum's and, like TF's, gives the whole gradient to ``x`` at a tie."""
    def op(node: Node, xs: list[torch.Tensor]) -> torch.Tensor:
        x, y = xs
        if y.numel() == 1 and y.ndim <= x.ndim and not y.requires_grad:
            c = float(y.reshape(()))
            return x.clamp(min=c) if bound == "min" else x.clamp(max=c)
        return fn(x, y)

    return op


def _unary(fn: Callable[[torch.Tensor], torch.Tensor]) -> OpFn:
    return lambda node, xs: fn(xs[0])


def _concat(node: Node, xs: list[torch.Tensor]) -> torch.Tensor:
    axis = int(xs[-1].reshape(-1)[0])
    return torch.cat(xs[:-1], dim=axis % xs[0].ndim)


OPS: dict[str, OpFn] = {
    "Identity": _unary(lambda x: x),
    "Conv2D": lambda n, xs: _conv(n, xs[0], xs[1], depthwise=False),
    "DepthwiseConv2dNative": lambda n, xs: _conv(n, xs[0], xs[1], depthwise=True),
    "_FusedConv2D": lambda n, xs: _fused(n, _conv(n, xs[0], xs[1], False), xs[2:]),
    "FusedDepthwiseConv2dNative": lambda n, xs: _fused(n, _conv(n, xs[0], xs[1], True), xs[2:]),
    "MatMul": lambda n, xs: _matmul(n, xs[0], xs[1]),
    "_FusedMatMul": lambda n, xs: _fused(n, _matmul(n, xs[0], xs[1]), xs[2:]),
    "BiasAdd": _binary(torch.add),
    "Add": _binary(torch.add),
    "AddV2": _binary(torch.add),
    "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul),
    "RealDiv": _binary(torch.div),
    "Maximum": _extremum(torch.maximum, "min"),
    "Minimum": _extremum(torch.minimum, "max"),
    "Abs": _unary(torch.abs),
    "Neg": _unary(torch.neg),
    "Square": _unary(torch.square),
    "Sqrt": _unary(torch.sqrt),
    "Rsqrt": _unary(torch.rsqrt),
    "Exp": _unary(torch.exp),
    "Relu": _unary(F.relu),
    "Relu6": _unary(lambda x: x.clamp(0.0, 6.0)),
    "Sigmoid": _unary(torch.sigmoid),
    "Tanh": _unary(torch.tanh),
    "Softmax": _unary(lambda x: torch.softmax(x, dim=-1)),
    "Prelu": lambda n, xs: torch.where(xs[0] < 0, xs[1] * xs[0], xs[0]),
    "Sum": _reduce(torch.sum),
    "Mean": _reduce(torch.mean),
    "Max": _reduce(torch.amax),
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Pad": _pad,
    "PadV2": _pad,
    "ConcatV2": _concat,
}


def get_op(node: Node) -> OpFn:
    """The implementation of ``node.op`` or a ``ValueError`` naming the unsupported op."""
    if node.op not in OPS:
        raise ValueError(
            f"unsupported TensorFlow op {node.op!r} (node {node.name!r}); supported: "
            f"{', '.join(sorted(OPS))}"
        )
    return OPS[node.op]

