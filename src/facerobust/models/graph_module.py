"""A folded program (:mod:`facerobust.models.graph_fold`) as a plain torch module.

Every step becomes a small ``nn.Module`` whose constants are buffers (``.to()`` moves them,
nothing is a parameter, so a backward pass computes input gradients only); ``forward`` runs
them in a straight line over a list of slots, with no graph lookups. Rank-4 values are NCHW,
in ``channels_last`` memory by default (measured faster on CPU); the module takes and returns
the graph's TF layout (NHWC), like the interpreter it replaces.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from facerobust.models.graph_compile import UNARY_OPS, Act, Program, Step
from facerobust.models.graph_fold import fold


class _PReLU(torch.autograd.Function):
    """PReLU whose backward gives the input gradient only: ``F.prelu``'s backward always
    reduces a slope gradient too (a third of a MobileFaceNet forward+backward, measured), and
    ``torch.where`` is ~10x slower than the three vectorised passes used here (exact: one of
    the two terms is zero)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, alpha)
        return F.prelu(x, alpha)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        x, alpha = ctx.saved_tensors
        if x.ndim == 4:  # channels last: the slope broadcasts along the innermost axis
            x, grad = x.permute(0, 2, 3, 1), grad.permute(0, 2, 3, 1)
        positive = torch.ops.aten.threshold_backward(grad, x, 0.0)  # grad where x > 0, else 0
        out = torch.addcmul(positive, grad - positive, alpha)
        return (out.permute(0, 3, 1, 2) if out.ndim == 4 else out), None


def prelu(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``x`` where ``x >= 0``, else ``alpha * x`` (one slope per channel, axis 1)."""
    if alpha.requires_grad:
        return F.prelu(x, alpha)
    return cast(torch.Tensor, _PReLU.apply(x, alpha))  # type: ignore[no-untyped-call]


class ActLayer(nn.Module):
    """clamp (relu / relu6 / one-sided) or PReLU; ``inplace`` (relu only, whose backward reads
    its result) on a fresh conv output, which the conv's backward never reads."""

    alpha: torch.Tensor | None

    def __init__(self, act: Act, *, inplace: bool = False) -> None:
        super().__init__()
        self.kind, self.lo, self.hi, self.inplace = act.kind, act.lo, act.hi, inplace
        self.register_buffer("alpha", act.alpha, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.alpha is not None:
            return prelu(x, self.alpha)
        if self.lo == 0.0 and self.hi == math.inf:
            return F.relu(x, inplace=self.inplace)
        if math.isfinite(self.lo) and math.isfinite(self.hi):
            return F.hardtanh(x, self.lo, self.hi)  # in place, autograd would clone x first
        return x.clamp(min=self.lo if math.isfinite(self.lo) else None,
                       max=self.hi if math.isfinite(self.hi) else None)


class ConvLayer(nn.Module):
    """Convolution with folded bias and fused activation; TF's asymmetric padding is one pad.

    A 1x1 stride-1 convolution is the interpreters' NHWC matrix product (the same BLAS call on
    the same memory when activations are channels-last, so the same rounding)."""

    weight: torch.Tensor  # buffers (register_buffer)
    bias: torch.Tensor | None

    def __init__(self, a: dict[str, Any], memory: torch.memory_format) -> None:
        super().__init__()
        weight = a["weight"]
        cout, cin, kh, kw = (int(s) for s in weight.shape)
        self.macs_per_output = cin * kh * kw  # multiply-adds per output element (FLOP counts)
        self.pointwise = (kh == kw == 1 and a["groups"] == 1 and not any(a["pad"])
                          and tuple(a["stride"]) == (1, 1))
        stored = weight.reshape(cout, cin).t() if self.pointwise else weight.contiguous(
            memory_format=memory)
        self.register_buffer("weight", stored, persistent=False)
        self.register_buffer("bias", a["bias"], persistent=False)
        left, right, top, bottom = a["pad"]
        symmetric = left == right and top == bottom
        self.padding = (top, left) if symmetric else (0, 0)
        self.pre_pad = None if symmetric else (left, right, top, bottom)
        self.stride, self.dilation, self.groups = a["stride"], a["dilation"], a["groups"]
        self.act = None if a["act"] is None else ActLayer(a["act"], inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pointwise:
            return self._pointwise(x)
        if self.pre_pad is not None:
            x = F.pad(x, self.pre_pad)
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                     self.groups)
        return y if self.act is None else self.act(y)

    def _pointwise(self, x: torch.Tensor) -> torch.Tensor:
        """One ``mm`` on the (N*H*W, C) view; bias and clamps in place on its fresh result
        (in place on a view would make autograd copy it back, ~25% of a faceres step)."""
        n, _, h, w = x.shape
        y = torch.mm(x.permute(0, 2, 3, 1).reshape(n * h * w, -1), self.weight)
        if self.bias is not None:
            y = y.add_(self.bias)
        prelu_act = self.act is not None and self.act.alpha is not None
        if self.act is not None and not prelu_act:
            y = self.act(y)
        y = y.view(n, h, w, -1).permute(0, 3, 1, 2)
        return self.act(y) if self.act is not None and prelu_act else y


class LinearLayer(nn.Module):
    """``x @ W.T + b`` with fused activation; ``flatten`` reads a rank-4 NCHW input."""

    weight: torch.Tensor  # buffers (register_buffer)
    bias: torch.Tensor | None

    def __init__(self, a: dict[str, Any]) -> None:
        super().__init__()
        self.register_buffer("weight", a["weight"].t(), persistent=False)  # (in, out)
        self.macs_per_output = int(a["weight"].shape[1])
        self.register_buffer("bias", a["bias"], persistent=False)
        self.act = None if a["act"] is None else ActLayer(a["act"], inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x @ self.weight
        if self.bias is not None:
            y = y + self.bias
        return y if self.act is None else self.act(y)


_BINARY: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
    "maximum": torch.maximum, "minimum": torch.minimum,
}


class ConstLayer(nn.Module):
    """An elementwise op with a constant operand (first or second)."""

    const: torch.Tensor  # buffer (register_buffer)

    def __init__(self, a: dict[str, Any]) -> None:
        super().__init__()
        self.fn, self.const_first = _BINARY[a["op"]], bool(a["const_first"])
        self.register_buffer("const", a["const"].contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.const, x) if self.const_first else self.fn(x, self.const)


class FnLayer(nn.Module):
    """A stateless op: binary of two values, unary, pad or reduction."""

    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.fn: Callable[..., torch.Tensor] = fn

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.fn(*xs)


class FallbackLayer(nn.Module):
    """An op without an NCHW form: run with TF semantics on NHWC views of its inputs."""

    def __init__(self, a: dict[str, Any]) -> None:
        super().__init__()
        self.fn: Callable[[list[torch.Tensor]], torch.Tensor] = a["fn"]
        self.to_tf, self.from_tf = a["to_tf"], a["from_tf"]
        self.consts: list[str | None] = []  # buffer name of each constant argument
        for i, value in enumerate(a["template"]):
            if value is None:
                self.consts.append(None)
            else:
                self.register_buffer(f"const_{i}", value, persistent=False)
                self.consts.append(f"const_{i}")

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        dynamic = iter(x.permute(0, 2, 3, 1) if tf else x
                       for x, tf in zip(xs, self.to_tf, strict=True))
        y = self.fn([next(dynamic) if c is None else getattr(self, c) for c in self.consts])
        return y.permute(0, 3, 1, 2) if self.from_tf else y


_REDUCE: dict[str, Callable[..., torch.Tensor]] = {
    "mean": torch.mean, "sum": torch.sum, "amax": torch.amax,
}


def _fn(step: Step) -> Callable[..., torch.Tensor]:
    """The function of a stateless step (plain or ``partial`` torch functions: picklable)."""
    a = step.attrs
    if step.kind == "binary":
        return _BINARY[a["op"]]
    if step.kind == "unary":
        return UNARY_OPS[a["fn"]]
    if step.kind == "pad":
        return partial(F.pad, pad=a["pads"], value=a["value"])
    if step.kind == "reduce":
        return partial(_REDUCE[a["fn"]], dim=list(a["dims"]), keepdim=a["keepdim"])
    raise ValueError(f"step {step.output!r}: unknown kind {step.kind!r}")


def layer(step: Step, memory: torch.memory_format) -> nn.Module:
    """The module running ``step``."""
    if step.kind == "conv":
        return ConvLayer(step.attrs, memory)
    if step.kind == "linear":
        return LinearLayer(step.attrs)
    if step.kind == "const":
        return ConstLayer(step.attrs)
    if step.kind == "act":
        return ActLayer(step.attrs["act"])
    if step.kind == "fallback":
        return FallbackLayer(step.attrs)
    return FnLayer(_fn(step))


class CompiledGraph(nn.Module):
    """A compiled graph: ``forward`` maps the NHWC input to the outputs (a list when
    ``as_list``, as TF.js graphs return, else the single output, as TFLite graphs do)."""

    def __init__(self, program: Program, output_names: list[str], *, as_list: bool,
                 channels_last: bool = True) -> None:
        super().__init__()
        self.output_names = list(output_names)
        self.as_list = as_list
        self.input_shape = tuple(program.input_shape[1:])
        self.memory = torch.channels_last if channels_last else torch.contiguous_format
        self.layers = nn.ModuleList(layer(s, self.memory) for s in program.steps)
        slot = {program.input: 0}
        for i, s in enumerate(program.steps):
            slot[s.output] = i + 1
        self.wiring = [tuple(slot[n] for n in s.inputs) for s in program.steps]
        self.outputs = [(slot[n], len(program.shapes[n]) == 4) for n in program.outputs]
        last_use = {n: i for i, s in enumerate(program.steps) for n in s.inputs}
        keep = {slot[n] for n in program.outputs}
        self.free = [[slot[n] for n in s.inputs if last_use[n] == i and slot[n] not in keep]
                     for i, s in enumerate(program.steps)]

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"the compiled graph takes NHWC input of shape (N, *"
                             f"{self.input_shape}), got {tuple(x.shape)}")
        values: list[torch.Tensor | None] = [None] * (len(self.layers) + 1)
        values[0] = x.permute(0, 3, 1, 2).contiguous(memory_format=self.memory)
        for i, (module, inputs, free) in enumerate(
                zip(self.layers, self.wiring, self.free, strict=True)):
            values[i + 1] = module(*[values[j] for j in inputs])
            for j in free:
                values[j] = None
        outs = [_nhwc(values[j]) if four else values[j] for j, four in self.outputs]
        result = [o for o in outs if o is not None]
        return result if self.as_list else result[0]


def _nhwc(x: torch.Tensor | None) -> torch.Tensor | None:
    return None if x is None else x.permute(0, 2, 3, 1)


@dataclass(frozen=True)
class CompileOptions:
    """How :func:`compile_program` builds the module: ``channels_last`` memory for rank-4
    values (else plain NCHW), and ``verify``: compare with the interpreter on a random input
    at build time, failing with a ``ValueError`` beyond ``rtol`` of the output's range;
    ``fold_scales``: batch-norm scales folded into conv weights (faster; outputs then differ
    from the interpreter by float rounding, ~1e-6 relative) or kept (bit-equal outputs)."""

    channels_last: bool = True
    verify: bool = True
    rtol: float = 1e-4
    fold_scales: bool = True


def compile_program(program: Program, output_names: list[str], *, as_list: bool,
                    options: CompileOptions, reference: nn.Module) -> CompiledGraph:
    """Fold ``program`` and build its module; ``reference`` is the interpreter it replaces."""
    folded = fold(program, fold_scales=options.fold_scales)
    module = CompiledGraph(folded, output_names, as_list=as_list,
                           channels_last=options.channels_last)
    if options.verify:
        generator = torch.Generator().manual_seed(0)
        x = torch.rand((2, *program.input_shape[1:]), generator=generator)
        with torch.no_grad():
            ours, ref = module(x), reference(x)
        for name, a, b in zip(output_names, _as_list(ours), _as_list(ref), strict=True):
            tol = options.rtol * max(1.0, float(b.abs().max()))
            if a.shape != b.shape or float((a - b).abs().max()) > tol:
                raise ValueError(f"compiled graph output {name!r} differs from the interpreter "
                                 f"(shapes {tuple(a.shape)} vs {tuple(b.shape)}): a compiler bug")
    return module


def _as_list(out: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    return out if isinstance(out, list) else [out]
