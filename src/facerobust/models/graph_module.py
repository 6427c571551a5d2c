"""A folded program (:mod:`facerobust.models.graph_fold`) as a plain torch module.

Every step becomes a small ``nn.Module`` (:mod:`facerobust.models.graph_layers`; constants are
buffers, nothing is a parameter, so a backward pass computes input gradients only);
``forward`` runs them in a straight line over a list of slots, with no graph lookups. Rank-4
values are NCHW, in ``channels_last`` memory by default (measured faster on CPU); the module
takes and returns the graph's TF layout (NHWC), like the interpreter it replaces.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from facerobust.models.graph_compile import Program
from facerobust.models.graph_fold import fold
from facerobust.models.graph_layers import layer


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
