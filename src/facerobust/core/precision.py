"""Numeric precision of the passes that *craft* adversarials (never of those that judge them).

``"fp32"`` (the default) runs everything in float32. ``"bf16"`` runs the forward and backward
passes of attacks under bfloat16 autocast: on a CPU with AVX512-BF16 a dlib forward+backward
takes about a third of the float32 time. The gradient's sign agrees with float32's on ~93% of
the pixels, so an attack is a slightly different (not a weaker-by-design) search; every score
and success the audit reports is judged by :func:`facerobust.core.embedding.embed`, which
always runs in float32 (it turns autocast off).

>>> with crafting("bf16", torch.device("cpu")):      # doctest: +SKIP
...     result = attack(model, x, criterion, epsilons=[2 / 255])
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("fp32", "bf16")


def check_precision(value: object, where: str) -> str:
    """``value`` when it names a precision, else a ValueError naming ``where``."""
    if value not in PRECISIONS:
        raise ValueError(f"{where}: precision must be one of {', '.join(PRECISIONS)}, "
                         f"got {value!r}")
    return str(value)


def crafting(precision: str, device: torch.device) -> contextlib.AbstractContextManager[object]:
    """The context attacks run in: bfloat16 autocast on ``device`` for ``"bf16"``, nothing for
    ``"fp32"``."""
    check_precision(precision, "crafting")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
