"""The modules a compiled graph (:mod:`facerobust.models.graph_module`) is made of, one per
folded step: convolution and linear with folded bias and fused activation, activations,
elementwise ops with a constant, stateless ops, and the fallback that runs an interpreter op.
Constants are buffers (``.to()`` moves them; nothing is a parameter, so a backward pass
computes input gradients only); everything pickles (no closures).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from facerobust.models.graph_compile import UNARY_OPS, Act, Step


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
    """clamp (relu / relu6 / one-sided) or PReLU; ``inplace`` on a fresh conv output, which the
    conv's backward never reads: relu always (its backward reads its result), any clamp when
    no gradient is taken."""

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
        if self.inplace and not (torch.is_grad_enabled() and x.requires_grad):
            # no autograd: clamp the fresh output in place (faceres inference ~7% faster)
            return x.clamp_(min=self.lo if math.isfinite(self.lo) else None,
                            max=self.hi if math.isfinite(self.hi) else None)
        if math.isfinite(self.lo) and math.isfinite(self.hi):
            return F.hardtanh(x, self.lo, self.hi)  # in place, autograd would clone x first
        return x.clamp(min=self.lo if math.isfinite(self.lo) else None,
                       max=self.hi if math.isfinite(self.hi) else None)


def _one_more_tap(weight: torch.Tensor, pad: tuple[int, int, int, int]
                  ) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """TF's SAME padding one larger after than before (stride 2, even size) as symmetric
    padding and a kernel with a leading zero tap: window i then starts one pixel earlier on
    a zero weight, so it sums the same products without a padded copy of the input (the pad
    and its backward were ~7% of a MobileFaceNet step)."""
    left, right, top, bottom = pad
    if bottom == top + 1:
        weight, top = F.pad(weight, (0, 0, 1, 0)), bottom
    if right == left + 1:
        weight, left = F.pad(weight, (1, 0, 0, 0)), right
    return weight, (left, right, top, bottom)


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
        left, right, top, bottom = a["pad"]
        if tuple(a["dilation"]) == (1, 1) and not self.pointwise:
            weight, (left, right, top, bottom) = _one_more_tap(weight, (left, right, top, bottom))
        stored = weight.reshape(cout, cin).t() if self.pointwise else weight.contiguous(
            memory_format=memory)
        self.register_buffer("weight", stored, persistent=False)
        self.register_buffer("bias", a["bias"], persistent=False)
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
