"""The one batched forward pass of the project (:func:`embed`) and a model's device."""

from __future__ import annotations

import torch
from torch import nn


def model_device(model: nn.Module) -> torch.device:
    """The device of the first parameter of ``model`` (CPU when it has none)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


@torch.no_grad()
def embed(model: nn.Module, chips: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """``model(chips)`` in batches on the model's device, returned on the CPU. The one batched
    forward pass of the project. ``chips`` may be a ChipRows (read batch by batch).

    The result is allocated once, after the first batch: keeping each batch's small output
    alive between the large, freed activations fragments the heap, and peak memory then grows
    with the number of chips (~12 KB per chip for dlib-resnet, measured). It always runs in
    float32, also inside an attack's bfloat16 autocast (:mod:`facerobust.core.precision`):
    scores and success are judged at full precision."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dev = model_device(model)
    result: torch.Tensor | None = None
    with torch.autocast(device_type=dev.type, enabled=False):
        for i in range(0, len(chips), batch_size):
            out = model(chips[i:i + batch_size].to(dev)).detach().float().cpu()
            if result is None:
                result = torch.empty((len(chips), *out.shape[1:]), dtype=out.dtype)
            result[i:i + len(out)] = out
    return result if result is not None else torch.empty(0)


