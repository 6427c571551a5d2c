"""Lower a TF-layout (NHWC) op graph to a straight-line NCHW program of torch steps.

The TF.js and TFLite front ends (:mod:`facerobust.models.tfjs.compiled`,
:mod:`facerobust.models.tflite_compiled`) walk their graph once on a sample input, fold every
op whose inputs are all constants, and describe each remaining op to a :class:`Builder` in
TF terms (NHWC shapes, constants in TF layout). The builder emits :class:`Step` records in
which every rank-4 value is NCHW: conv weights become OIHW, per-channel constants (1, C, 1, 1),
reduction axes are remapped; an op with no NCHW form runs as a ``fallback`` step on NHWC
views. :mod:`facerobust.models.graph_fold` then folds and fuses the steps and
:mod:`facerobust.models.graph_module` turns them into a plain ``nn.Module``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

Operand = str | torch.Tensor  # a dynamic value's name, or a constant in TF layout
TFFn = Callable[[list[torch.Tensor]], torch.Tensor]  # an op on TF-layout tensors
NHWC_TO_NCHW_AXIS = (0, 2, 3, 1)  # NHWC axis a lives at NCHW axis NHWC_TO_NCHW_AXIS[a]
BINARY_OPS = ("add", "sub", "mul", "div", "maximum", "minimum")


def identity(x: torch.Tensor) -> torch.Tensor:
    return x


UNARY_OPS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {  # module-level: picklable
    "identity": identity, "abs": torch.abs, "neg": torch.neg, "square": torch.square,
    "sqrt": torch.sqrt, "rsqrt": torch.rsqrt, "exp": torch.exp, "sigmoid": torch.sigmoid,
    "tanh": torch.tanh, "elu": torch.nn.functional.elu,
}


@dataclass(frozen=True)
class Act:
    """An activation a conv/linear step may carry: ``clamp`` to [lo, hi] (relu is [0, inf],
    relu6 [0, 6]) or ``prelu`` with one slope per channel."""

    kind: str
    lo: float = -math.inf
    hi: float = math.inf
    alpha: torch.Tensor | None = None


@dataclass
class Step:
    """One op of the lowered program: ``kind`` with NCHW semantics, reading the dynamic
    values ``inputs`` and writing ``output`` (of TF-layout shape ``shape``, batch 1)."""

    kind: str
    inputs: list[str]
    output: str
    shape: tuple[int, ...]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Program:
    """The lowered graph: one NHWC input, its steps and the values returned (TF layout)."""

    input: str
    input_shape: tuple[int, ...]
    steps: list[Step]
    outputs: list[str]
    shapes: dict[str, tuple[int, ...]]


@dataclass(frozen=True)
class Conv:
    """One convolution's constants: ``weight`` OIHW, ``bias`` or None, and ``pad`` as
    (left, right, top, bottom) zero padding."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    stride: Sequence[int]
    dilation: Sequence[int]
    groups: int
    pad: Sequence[int]


def const_nchw(c: torch.Tensor, rank: int) -> torch.Tensor:
    """A constant broadcasting against a TF-layout value of ``rank`` -> the same constant
    broadcasting against that value in NCHW (rank 4 only; other ranks keep their layout)."""
    if rank != 4 or c.ndim == 0:
        return c
    if c.ndim > 4:
        raise ValueError(f"constant of rank {c.ndim} cannot broadcast against a rank-4 value")
    return c.reshape((1,) * (4 - c.ndim) + tuple(c.shape)).permute(0, 3, 1, 2)


class Builder:
    """Collects NCHW steps for ops described in TF terms; see the module docstring."""

    def __init__(self, input_name: str, input_shape: Sequence[int]) -> None:
        self.input = input_name
        self.shapes: dict[str, tuple[int, ...]] = {input_name: tuple(input_shape)}
        self.steps: list[Step] = []

    def rank(self, name: str) -> int:
        return len(self.shapes[name])

    def emit(self, kind: str, inputs: list[str], out: str, shape: Sequence[int],
             **attrs: Any) -> None:
        self.shapes[out] = tuple(shape)
        self.steps.append(Step(kind, inputs, out, tuple(shape), attrs))

    def conv(self, x: str, out: str, shape: Sequence[int], c: Conv) -> None:
        """A convolution of ``x`` with the constants ``c``."""
        self.emit("conv", [x], out, shape, weight=c.weight.float(),
                  bias=None if c.bias is None else c.bias.float().reshape(-1),
                  stride=tuple(c.stride), dilation=tuple(c.dilation), groups=int(c.groups),
                  pad=tuple(int(p) for p in c.pad), act=None)

    def linear(self, x: str, out: str, shape: Sequence[int], weight: torch.Tensor) -> None:
        """``weight`` is (out_features, in_features): ``y = x @ weight.T``."""
        self.emit("linear", [x], out, shape, weight=weight.float(), bias=None, act=None)

    def binary(self, op: str, a: Operand, b: Operand, out: str, shape: Sequence[int]) -> None:
        """An elementwise op of two operands, at least one of them dynamic."""
        if op not in BINARY_OPS:
            raise ValueError(f"unknown binary op {op!r}")
        if isinstance(a, str) and isinstance(b, str):
            if self.rank(a) != self.rank(b):
                raise ValueError(f"{out}: binary op on ranks {self.rank(a)} and {self.rank(b)}")
            self.emit("binary", [a, b], out, shape, op=op)
            return
        if isinstance(b, str) and isinstance(a, torch.Tensor):
            x, c, const_first = b, a, True
        elif isinstance(a, str) and isinstance(b, torch.Tensor):
            x, c, const_first = a, b, False
        else:
            raise ValueError(f"{out}: a binary op needs at least one dynamic operand")
        if op in ("maximum", "minimum") and c.numel() == 1 and c.ndim <= self.rank(x):
            value = float(c.reshape(()))  # against a scalar: a clamp
            act = Act("clamp", lo=value) if op == "maximum" else Act("clamp", hi=value)
            self.emit("act", [x], out, shape, act=act)
            return
        self.emit("const", [x], out, shape, op=op, const=const_nchw(c, self.rank(x)),
                  const_first=const_first)

    def act(self, x: str, out: str, shape: Sequence[int], act: Act) -> None:
        self.emit("act", [x], out, shape, act=act)

    def unary(self, name: str, x: str, out: str, shape: Sequence[int]) -> None:
        if name not in UNARY_OPS:
            raise ValueError(f"unknown unary op {name!r}")
        self.emit("unary", [x], out, shape, fn=name)

    def pad(self, x: str, out: str, shape: Sequence[int], pads: Sequence[Sequence[int]],
            value: float) -> None:
        """``pads`` are TF's per-axis (before, after) pairs."""
        order = NHWC_TO_NCHW_AXIS if self.rank(x) == 4 else tuple(range(self.rank(x)))
        per_axis = [(0, 0)] * len(order)
        for axis, (before, after) in enumerate(pads):
            per_axis[order[axis]] = (int(before), int(after))
        flat = [p for pair in reversed(per_axis) for p in pair]  # F.pad: last axis first
        self.emit("pad", [x], out, shape, pads=tuple(flat), value=float(value))

    def reduce(self, fn: str, x: str, out: str, shape: Sequence[int], axes: Sequence[int],
               keepdim: bool, tf_fn: TFFn, operands: list[Operand]) -> None:
        """``fn`` in mean/sum/amax over TF ``axes``; where NCHW would order the result
        differently, ``tf_fn`` runs on ``operands`` instead (see :meth:`fallback`)."""
        rank = self.rank(x)
        axes = sorted({a % rank for a in axes})
        dims = sorted(NHWC_TO_NCHW_AXIS[a] for a in axes) if rank == 4 else axes
        kept = [NHWC_TO_NCHW_AXIS[a] for a in range(4) if a not in axes]
        if rank == 4 and not keepdim and kept != sorted(kept):
            self.fallback(tf_fn, operands, out, shape)
            return
        self.emit("reduce", [x], out, shape, fn=fn, dims=tuple(dims), keepdim=keepdim)

    def fallback(self, fn: TFFn, operands: list[Operand], out: str,
                 shape: Sequence[int]) -> None:
        """Run ``fn`` (TF semantics) on ``operands`` with rank-4 dynamic values as NHWC views
        (free for channels-last memory); a rank-4 result goes back to NCHW."""
        inputs = [o for o in operands if isinstance(o, str)]
        if not inputs:
            raise ValueError(f"{out}: a fallback step needs a dynamic input")
        self.emit("fallback", inputs, out, shape, fn=fn,
                  template=[None if isinstance(o, str) else o for o in operands],
                  to_tf=tuple(self.rank(i) == 4 for i in inputs), from_tf=len(shape) == 4)

    def program(self, outputs: list[str]) -> Program:
        return Program(self.input, self.shapes[self.input], self.steps, outputs, self.shapes)
