"""Reading a facerobust ``torch.save`` file (student weights, the hardened model's difference,
a fine-tuning checkpoint): one place that loads tensors only (no pickled code runs) and turns
a corrupt file or another format into a ``ValueError`` naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def read_torch_file(path: Path, what: str, fmt: int, *, hint: str = "") -> dict[str, Any]:
    """The dict saved at ``path`` (tensors and plain values only), whose ``"format"`` must be
    ``fmt``; ``what`` names the kind of file and ``hint`` what to do in the error."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt file
        raise ValueError(f"{path}: not a readable {what} file ({err})") from None
    if not isinstance(blob, dict) or blob.get("format") != fmt:
        raise ValueError(f"{path}: not a {what} file of format {fmt}{hint}")
    return blob


__all__ = ["read_torch_file"]
