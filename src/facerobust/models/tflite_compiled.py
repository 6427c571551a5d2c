"""Compile a TFLite graph (:class:`~facerobust.models.tflite.TFLiteGraph`) into a plain torch
module once at load, as :mod:`facerobust.models.tfjs.compiled` does for TF.js graphs: one
sample run folds constants and gives shapes, each operator becomes NCHW steps, the steps are
folded (bias and activations into convolutions, ``relu(x) + c * (x - |x|)`` into PReLU) and
built into a :class:`~facerobust.models.graph_module.CompiledGraph`. The reader stays the
oracle; the module takes the same NHWC input and returns the same tensor.

>>> lite = load_tflite(Path("MobileFaceNet.tflite"))   # doctest: +SKIP
>>> fast = compile_tflite(lite, (112, 112, 3))          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch

from facerobust.models.graph_compile import Act, Builder, Conv, Operand, Program
from facerobust.models.graph_module import CompiledGraph, CompileOptions, compile_program
from facerobust.models.tfjs.ops import same_pad
from facerobust.models.tflite import OPS, Operator, TFLiteGraph

_ACTS = {"RELU": Act("clamp", 0.0), "RELU6": Act("clamp", 0.0, 6.0)}
_BINARY = {"ADD": "add", "SUB": "sub", "MUL": "mul"}


def compile_tflite(graph: TFLiteGraph, input_hwc: Sequence[int],
                   options: CompileOptions | None = None) -> CompiledGraph:
    """``graph`` as a :class:`CompiledGraph` for NHWC inputs of spatial shape ``input_hwc``."""
    return compile_program(lower_tflite(graph, input_hwc), graph.output_names, as_list=False,
                           options=options or CompileOptions(), reference=graph)


def _name(index: int) -> str:
    return f"t{index}"


def lower_tflite(graph: TFLiteGraph, input_hwc: Sequence[int]) -> Program:
    """The NCHW program of ``graph`` (constants folded, shapes from one sample run)."""
    builder = Builder(_name(graph.input_index), (1, *input_hwc))
    values = {_name(i): v for i, v in graph.constants().items()}
    values[_name(graph.input_index)] = torch.rand((1, *input_hwc),
                                                  generator=torch.Generator().manual_seed(0))
    dynamic = {_name(graph.input_index)}
    with torch.no_grad():
        for op in graph.operators:
            names = [_name(i) if i >= 0 else None for i in op.inputs]
            out = OPS[op.op](op, [None if n is None else values[n] for n in names])
            values[_name(op.outputs[0])] = out
            if any(n in dynamic for n in names if n is not None):
                dynamic.add(_name(op.outputs[0]))
                _lower(builder, op, [n if n is None or n in dynamic else values[n]
                                     for n in names], tuple(out.shape))
    if _name(graph.output_index) not in dynamic:
        raise ValueError("the graph's output does not depend on its input")
    return builder.program([_name(graph.output_index)])


def _lower(b: Builder, op: Operator, ops: list[Operand | None], shape: tuple[int, ...]) -> None:
    out = _name(op.outputs[0])
    activation = op.options.get("activation", "NONE")
    if activation != "NONE" and activation not in _ACTS:
        return _fallback(b, op, ops, shape)
    target = f"{out}#pre" if activation != "NONE" else out
    x = ops[0]
    if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D") and _conv(b, op, ops, target, shape):
        pass
    elif op.op in _BINARY and len(ops) == 2 and None not in ops and _binary_ok(b, ops, shape):
        b.binary(_BINARY[op.op], ops[0], ops[1], target, shape)  # type: ignore[arg-type]
    elif op.op in _ACTS and isinstance(x, str):
        b.act(x, target, shape, _ACTS[op.op])
    elif op.op == "ABS" and isinstance(x, str):
        b.unary("abs", x, target, shape)
    elif (op.op == "PRELU" and isinstance(x, str) and isinstance(ops[1], torch.Tensor)
          and len(shape) in (2, 4) and ops[1].numel() in (1, shape[-1])):
        slope = ops[1].float().reshape(-1).expand(int(shape[-1])).contiguous()
        b.act(x, target, shape, Act("prelu", alpha=slope))
    else:
        return _fallback(b, op, ops, shape)
    if activation != "NONE":
        b.act(target, out, shape, _ACTS[activation])
    return None


def run_operator(op: Operator, present: tuple[bool, ...], args: list[torch.Tensor]
                 ) -> torch.Tensor:
    """``op`` run by the reader, its absent inputs (``present`` false) passed as ``None``
    (a fallback step; module-level, so picklable)."""
    it = iter(args)
    return OPS[op.op](op, [next(it) if here else None for here in present])


def _fallback(b: Builder, op: Operator, ops: list[Operand | None], shape: tuple[int, ...]) -> None:
    present = tuple(o is not None for o in ops)
    b.fallback(partial(run_operator, op, present), [o for o in ops if o is not None],
               _name(op.outputs[0]), shape)


def _binary_ok(b: Builder, ops: list[Operand | None], shape: tuple[int, ...]) -> bool:
    a, c = ops
    if isinstance(a, str) and isinstance(c, str):
        return b.rank(a) == b.rank(c)
    return all(not isinstance(o, torch.Tensor) or o.ndim <= len(shape) for o in ops)


def _conv(b: Builder, op: Operator, ops: list[Operand | None], target: str,
          shape: tuple[int, ...]) -> bool:
    x, w, bias = ops[0], ops[1], ops[2] if len(ops) > 2 else None
    if not isinstance(x, str) or not isinstance(w, torch.Tensor) or isinstance(bias, str):
        return False
    cout, kh, kw, cin = (int(s) for s in w.shape)
    stride, dil = op.options["stride"], op.options["dilation"]
    _, height, width, channels = b.shapes[x]
    if op.options["padding"] == "SAME":
        top, bottom = same_pad(height, kh, stride[0], dil[0])
        left, right = same_pad(width, kw, stride[1], dil[1])
    else:
        top = bottom = left = right = 0
    if op.op == "DEPTHWISE_CONV_2D":  # [1, kh, kw, cin * multiplier]
        weight, groups = w.permute(3, 0, 1, 2), channels
    else:  # [cout, kh, kw, cin]
        weight, groups = w.permute(0, 3, 1, 2), 1
    b.conv(x, target, shape, Conv(weight, bias, stride, dil, groups, (left, right, top, bottom)))
    return True
