"""Fold and fuse a lowered program (:mod:`facerobust.models.graph_compile`) to a fixed point.

Rewrites, each applied only where the value it absorbs has no other consumer:

* per-channel ``mul`` of a constant after a conv goes into its weight (batch-norm as exported
  by TF; this changes float rounding), ``add`` / ``sub`` after a conv or linear into its bias;
* an activation after a conv or linear becomes part of it; clamp after clamp is one clamp
  (relu -> min 6 -> max 0 is relu6);
* the two PReLU spellings of exported graphs, ``max(x, 0) + g * min(x, 0)`` and
  ``relu(x) + c * (x - |x|)``, become one PReLU (slope ``g``, resp. ``2c``: exact in float);
* zero padding before a conv becomes the conv's padding.

Steps nothing reads any more are dropped.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

import torch

from facerobust.models.graph_compile import Act, Program, Step

Producers = dict[str, Step]


def fold(program: Program, *, fold_scales: bool = True) -> Program:
    """``program`` with every rewrite above applied until none applies; ``fold_scales=False``
    keeps per-channel scales out of conv weights (outputs bit-equal to the interpreter's)."""
    steps = list(program.steps)
    while True:
        producers = {s.output: s for s in steps}
        uses = Counter(i for s in steps for i in s.inputs) + Counter(program.outputs)
        for index, step in enumerate(steps):
            new = _rewrite(step, producers, uses, fold_scales)
            if new is not None:
                steps[index] = new
                break
        else:
            return replace(program, steps=steps)
        steps = _live(steps, program.outputs)


def _live(steps: list[Step], outputs: list[str]) -> list[Step]:
    needed = set(outputs)
    kept: list[Step] = []
    for step in reversed(steps):
        if step.output in needed:
            kept.append(step)
            needed.update(step.inputs)
    return kept[::-1]


def _rewrite(step: Step, producers: Producers, uses: Counter[str],
             fold_scales: bool) -> Step | None:
    if step.kind == "binary" and step.attrs["op"] == "add":
        return _prelu(step, producers)
    if not step.inputs or uses[step.inputs[0]] != 1 or step.inputs[0] not in producers:
        return None
    src = producers[step.inputs[0]]
    if step.kind == "act" and src.kind == "act":
        return _clamp_clamp(src, step)
    if step.kind == "const" and src.kind in ("conv", "linear") and src.attrs["act"] is None:
        return _affine_into(src, step, fold_scales)
    if step.kind == "act" and src.kind in ("conv", "linear"):
        if src.attrs["act"] is None:
            return _with(src, step, act=step.attrs["act"])
        merged = _merge_clamps(src.attrs["act"], step.attrs["act"])
        return None if merged is None else _with(src, step, act=merged)
    if step.kind == "conv" and src.kind == "pad":
        return _pad_into(src, step)
    return None


def _with(src: Step, step: Step, **attrs: object) -> Step:
    """``src``'s op producing ``step``'s output, with ``attrs`` changed."""
    return Step(src.kind, list(src.inputs), step.output, step.shape, {**src.attrs, **attrs})


def _channel_vector(c: torch.Tensor, n: int, rank: int) -> torch.Tensor | None:
    """``c`` as one value per channel (axis 1 of a rank-``rank`` value), or ``None``."""
    if c.numel() == 1:
        return c.reshape(()).expand(n).float().clone()
    shape = (1,) * (rank - c.ndim) + tuple(c.shape) if c.ndim <= rank else None
    if shape is None or shape[1] != n or math.prod(shape) != n:
        return None
    return c.reshape(n).float()


def _affine_into(src: Step, step: Step, fold_scales: bool) -> Step | None:
    op, first = step.attrs["op"], step.attrs["const_first"]
    n = int(src.attrs["weight"].shape[0])
    c = _channel_vector(step.attrs["const"], n, len(src.shape))
    if c is None:
        return None
    weight, bias = src.attrs["weight"], src.attrs["bias"]
    if op == "mul" and src.kind == "conv" and fold_scales:
        scale = c.reshape(-1, *([1] * (weight.ndim - 1)))
        return _with(src, step, weight=weight * scale, bias=None if bias is None else bias * c)
    if op == "add" or (op == "sub" and not first):
        shift = c if op == "add" else -c
        return _with(src, step, bias=shift if bias is None else bias + shift)
    return None


def _merge_clamps(a: Act, b: Act) -> Act | None:
    """``b(a(x))`` as one clamp, when both are clamps with overlapping ranges."""
    if a.kind != "clamp" or b.kind != "clamp":
        return None
    lo, hi = max(a.lo, b.lo), min(a.hi, b.hi)
    return Act("clamp", lo, hi) if lo <= hi else None


def _clamp_clamp(src: Step, step: Step) -> Step | None:
    merged = _merge_clamps(src.attrs["act"], step.attrs["act"])
    return None if merged is None else _with(src, step, act=merged)


def _pad_into(src: Step, step: Step) -> Step | None:
    w0, w1, h0, h1, *rest = src.attrs["pads"]
    if src.attrs["value"] != 0.0 or any(rest) or min(w0, w1, h0, h1) < 0:
        return None
    left, right, top, bottom = step.attrs["pad"]
    return Step("conv", list(src.inputs), step.output, step.shape,
                {**step.attrs, "pad": (left + w0, right + w1, top + h0, bottom + h1)})


def _act_of(producers: Producers, name: str, lo: float, hi: float) -> str | None:
    """The input of ``name`` when ``name`` is ``clamp(x, lo, hi)``."""
    s = producers.get(name)
    if s is None or s.kind != "act" or s.attrs["act"].kind != "clamp":
        return None
    return s.inputs[0] if (s.attrs["act"].lo, s.attrs["act"].hi) == (lo, hi) else None


def _const_mul(producers: Producers, name: str) -> tuple[str, torch.Tensor] | None:
    s = producers.get(name)
    if s is None or s.kind != "const" or s.attrs["op"] != "mul":
        return None
    return s.inputs[0], s.attrs["const"]


def _prelu(step: Step, producers: Producers) -> Step | None:
    """``max(x,0) + g*min(x,0)`` or ``relu(x) + c*(x - |x|)`` as ``prelu(x)``."""
    a, b = step.inputs
    for pos, neg in ((a, b), (b, a)):
        x = _act_of(producers, pos, 0.0, math.inf)
        scaled = _const_mul(producers, neg)
        if x is None or scaled is None:
            continue
        inner, slope = scaled
        if _act_of(producers, inner, -math.inf, 0.0) == x:
            return _prelu_step(step, x, slope)
        diff = producers.get(inner)
        if (diff is not None and diff.kind == "binary" and diff.attrs["op"] == "sub"
                and diff.inputs[0] == x and _is_abs_of(producers, diff.inputs[1], x)):
            return _prelu_step(step, x, slope * 2.0)
    return None


def _is_abs_of(producers: Producers, name: str, x: str) -> bool:
    s = producers.get(name)
    return s is not None and s.kind == "unary" and s.attrs["fn"] == "abs" and s.inputs == [x]


def _prelu_step(step: Step, x: str, slope: torch.Tensor) -> Step | None:
    channels = step.shape[-1] if len(step.shape) == 4 else step.shape[1]
    alpha = _channel_vector(slope, int(channels), len(step.shape))
    if alpha is None or len(step.shape) < 2:
        return None
    return Step("act", [x], step.output, step.shape, {"act": Act("prelu", alpha=alpha)})
