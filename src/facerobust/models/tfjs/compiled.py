"""Compile a TF.js graph (:class:`~facerobust.models.tfjs.graph.TFGraph`) into a plain torch
module once at load: the graph is run once on a sample input to fold constants and learn
shapes, each op is lowered to NCHW steps (:mod:`facerobust.models.graph_compile`), folded
(batch-norm into convolutions, activations fused, PReLU recognised) and built into a
:class:`~facerobust.models.graph_module.CompiledGraph`. The interpreter stays the oracle:
the module equals it to float rounding and takes the same NHWC input.

>>> g = load_graph_model(Path("faceres.json"), outputs=["global_pooling/Mean"])  # doctest: +SKIP
>>> fast = compile_tfjs(g, (224, 224, 3))                                      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch

from facerobust.models.graph_compile import Act, Builder, Conv, Operand, Program
from facerobust.models.graph_module import CompiledGraph, CompileOptions, compile_program
from facerobust.models.tfjs.graph import TFGraph
from facerobust.models.tfjs.nodes import Node
from facerobust.models.tfjs.ops import get_op, same_pad

_BINARY = {"BiasAdd": "add", "Add": "add", "AddV2": "add", "Sub": "sub", "Mul": "mul",
           "RealDiv": "div", "Maximum": "maximum", "Minimum": "minimum"}
_UNARY = {"Identity": "identity", "Abs": "abs", "Neg": "neg", "Square": "square",
          "Sqrt": "sqrt", "Rsqrt": "rsqrt", "Exp": "exp", "Sigmoid": "sigmoid", "Tanh": "tanh",
          "Elu": "elu"}
_CLAMPS = {"Relu": Act("clamp", 0.0), "Relu6": Act("clamp", 0.0, 6.0)}
_FUSABLE = {"BiasAdd", "Prelu", "LeakyRelu", *_CLAMPS, *_UNARY}
_REDUCE = {"Mean": "mean", "Sum": "sum", "Max": "amax"}
_CONV = ("Conv2D", "DepthwiseConv2dNative", "_FusedConv2D", "FusedDepthwiseConv2dNative")


def compile_tfjs(graph: TFGraph, input_hwc: Sequence[int],
                 options: CompileOptions | None = None) -> CompiledGraph:
    """``graph`` as a :class:`CompiledGraph` for NHWC inputs of spatial shape ``input_hwc``."""
    program = lower_tfjs(graph, input_hwc)
    return compile_program(program, graph.output_names, as_list=True,
                           options=options or CompileOptions(), reference=graph)


def lower_tfjs(graph: TFGraph, input_hwc: Sequence[int]) -> Program:
    """The NCHW program of ``graph`` (constants folded, shapes from one sample run)."""
    if len(graph.input_names) != 1:
        raise ValueError(f"only single-input graphs compile; inputs: {graph.input_names}")
    source = graph.input_names[0]
    builder = Builder(source, (1, *input_hwc))
    values: dict[str, torch.Tensor] = dict(graph.constants())
    values[source] = torch.rand((1, *input_hwc), generator=torch.Generator().manual_seed(0))
    dynamic = {source}
    with torch.no_grad():
        for name in graph.order:
            node = graph.nodes[name]
            values[name] = get_op(node)(node, [values[d] for d, _ in node.inputs])
            if any(d in dynamic for d, _ in node.inputs):
                dynamic.add(name)
                operands: list[Operand] = [d if d in dynamic else values[d]
                                           for d, _ in node.inputs]
                _lower(builder, node, operands, tuple(values[name].shape))
    outputs = [name for name, _ in graph.output_refs]
    for name in outputs:
        if name not in dynamic:
            raise ValueError(f"output {name!r} does not depend on the input")
    return builder.program(outputs)


def run_node(node: Node, args: list[torch.Tensor]) -> torch.Tensor:
    """``node`` run by the interpreter (a fallback step; module-level, so picklable)."""
    return get_op(node)(node, args)


def _lower(b: Builder, node: Node, ops: list[Operand], shape: tuple[int, ...]) -> None:
    if not _native(b, node, ops, shape):
        b.fallback(partial(run_node, node), ops, node.name, shape)


def _native(b: Builder, node: Node, ops: list[Operand], shape: tuple[int, ...]) -> bool:
    """Emit ``node`` as native steps; ``False`` leaves it to the fallback."""
    x = ops[0]
    if node.op in _CONV:
        return _conv(b, node, ops, shape)
    if node.op in ("MatMul", "_FusedMatMul"):
        return _matmul(b, node, ops, shape)
    if node.op in _BINARY and len(ops) == 2:
        a, c = ops
        if isinstance(a, str) and isinstance(c, str):
            if b.rank(a) != b.rank(c):
                return False
        elif any(isinstance(o, torch.Tensor) and o.ndim > len(shape) for o in ops):
            return False
        b.binary(_BINARY[node.op], a, c, node.name, shape)
        return True
    if not isinstance(x, str):
        return False
    if node.op in _UNARY:
        b.unary(_UNARY[node.op], x, node.name, shape)
    elif node.op in _CLAMPS:
        b.act(x, node.name, shape, _CLAMPS[node.op])
    elif node.op == "Prelu" and _tail_ok(["Prelu"], ops[1:], shape):
        return _act_tail(b, node, x, ops[1:], shape, ["Prelu"])
    elif node.op in _REDUCE and isinstance(ops[1], torch.Tensor):
        b.reduce(_REDUCE[node.op], x, node.name, shape, ops[1].reshape(-1).tolist(),
                 node.attr_bool("keep_dims", False), partial(run_node, node), ops)
    elif node.op in ("Pad", "PadV2") and isinstance(pads := ops[1], torch.Tensor):
        fill = ops[2] if len(ops) > 2 else torch.zeros(())
        if not isinstance(fill, torch.Tensor):
            return False
        b.pad(x, node.name, shape, pads.reshape(-1, 2).tolist(), float(fill.reshape(-1)[0]))
    else:
        return False
    return True


def _conv(b: Builder, node: Node, ops: list[Operand], shape: tuple[int, ...]) -> bool:
    x, w = ops[0], ops[1]
    fused = node.attr_strs("fused_ops", []) if "Fused" in node.op else []
    if (not isinstance(x, str) or not isinstance(w, torch.Tensor)
            or node.attr_str("data_format", "NHWC") != "NHWC"
            or not _tail_ok(fused, ops[2:], shape)):
        return False
    strides = node.attr_ints("strides", [1, 1, 1, 1])
    dil = node.attr_ints("dilations", [1, 1, 1, 1])
    kh, kw, cin, cout = (int(s) for s in w.shape)
    _, height, width, channels = b.shapes[x]
    padding = node.attr_str("padding", "VALID")
    if padding == "SAME":
        top, bottom = same_pad(height, kh, strides[1], dil[1])
        left, right = same_pad(width, kw, strides[2], dil[2])
    elif padding == "EXPLICIT":
        p = node.attr_ints("explicit_paddings", [])
        top, bottom, left, right = p[2], p[3], p[4], p[5]
    elif padding == "VALID":
        top = bottom = left = right = 0
    else:
        return False
    if "Depthwise" in node.op:
        weight, groups = w.permute(2, 3, 0, 1).reshape(cin * cout, 1, kh, kw), cin
    else:
        weight, groups = w.permute(3, 2, 0, 1), channels // cin
    target = f"{node.name}#conv" if fused else node.name
    b.conv(x, target, shape,
           Conv(weight, None, strides[1:3], dil[1:3], groups, (left, right, top, bottom)))
    return _act_tail(b, node, target, ops[2:], shape, fused)


def _matmul(b: Builder, node: Node, ops: list[Operand], shape: tuple[int, ...]) -> bool:
    x, w = ops[0], ops[1]
    fused = node.attr_strs("fused_ops", []) if node.op == "_FusedMatMul" else []
    if (not isinstance(x, str) or not isinstance(w, torch.Tensor) or b.rank(x) != 2
            or node.attr_bool("transpose_a", False) or not _tail_ok(fused, ops[2:], shape)):
        return False
    target = f"{node.name}#matmul" if fused else node.name
    b.linear(x, target, shape, w if node.attr_bool("transpose_b", False) else w.t())
    return _act_tail(b, node, target, ops[2:], shape, fused)


def _tail_ok(fused: list[str], extra: list[Operand], shape: tuple[int, ...]) -> bool:
    """Whether :func:`_act_tail` can emit ``fused`` natively (constant arguments, PReLU
    slopes per channel on a rank-2 or rank-4 value)."""
    if not all(f in _FUSABLE for f in fused) or not all(isinstance(e, torch.Tensor)
                                                         for e in extra):
        return False
    args = list(extra)
    for op in fused:
        arg = args.pop(0) if op == "BiasAdd" or (op == "Prelu" and args) else None
        if op in ("Prelu", "LeakyRelu") and (len(shape) not in (2, 4) or (
                isinstance(arg, torch.Tensor) and arg.numel() not in (1, shape[-1]))):
            return False
    return True


def _act_tail(b: Builder, node: Node, x: str, extra: list[Operand], shape: tuple[int, ...],
              fused: list[str]) -> bool:
    """TF's fused ops after ``x`` (bias, activations), the last one writing ``node.name``."""
    args = list(extra)
    channels = int(shape[-1])
    for i, op in enumerate(fused):
        out = node.name if i == len(fused) - 1 else f"{node.name}#{i}"
        if op == "BiasAdd":
            b.binary("add", x, args.pop(0), out, shape)
        elif op in ("Prelu", "LeakyRelu"):
            alpha = args.pop(0) if op == "Prelu" and args else torch.tensor(
                node.attr_float("leakyrelu_alpha", node.attr_float("alpha", 0.2)))
            if not isinstance(alpha, torch.Tensor):
                raise ValueError(f"node {node.name!r}: the PReLU slope is not a constant")
            slope = alpha.float().reshape(-1).expand(channels).contiguous()
            b.act(x, out, shape, Act("prelu", alpha=slope))
        elif op in _CLAMPS:
            b.act(x, out, shape, _CLAMPS[op])
        else:
            b.unary(_UNARY[op], x, out, shape)
        x = out
    return True
