"""Read TensorFlow.js weight manifests (``weightsManifest``) into numpy arrays.

A manifest is a list of groups ``{"paths": [...], "weights": [...]}``; the group's shard files
are concatenated and each weight takes ``prod(shape) * itemsize`` bytes in order. Weights may
be stored quantised: ``quantization = {"dtype": "uint8"|"uint16", "scale", "min"}`` (value =
q * scale + min) or ``{"dtype": "float16"}`` (half precision on disk).

>>> arrays = read_manifest(manifest, folder)   # doctest: +SKIP
>>> arrays["conv1/filters"].shape               # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from facerobust.models.fetch import RECORD, verified_file

_DTYPES: dict[str, np.dtype[Any]] = {
    "float32": np.dtype("<f4"),
    "int32": np.dtype("<i4"),
    "bool": np.dtype("u1"),
    "float16": np.dtype("<f2"),
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
}


def _storage_dtype(entry: dict[str, Any]) -> np.dtype[Any]:
    quant = entry.get("quantization")
    name = quant["dtype"] if quant else entry["dtype"]
    if name not in _DTYPES:
        raise ValueError(f"weight {entry.get('name')!r}: unsupported storage dtype {name!r}")
    return _DTYPES[name]


def decode_weight(entry: dict[str, Any], raw: bytes) -> np.ndarray:
    """Decode one manifest entry from its bytes to an array of its logical dtype."""
    shape = tuple(int(s) for s in entry.get("shape", []))
    stored = np.frombuffer(raw, dtype=_storage_dtype(entry)).reshape(shape)
    quant = entry.get("quantization")
    dtype = entry["dtype"]
    if quant is None:
        return stored.astype(np.int64 if dtype == "int32" else stored.dtype, copy=True)
    if quant["dtype"] == "float16":
        return stored.astype(np.float32)
    if quant["dtype"] in ("uint8", "uint16"):
        if "scale" not in quant or "min" not in quant:
            raise ValueError(f"weight {entry['name']!r}: affine quantisation needs scale and min")
        values = stored.astype(np.float64) * float(quant["scale"]) + float(quant["min"])
        return values.astype(np.int64 if dtype == "int32" else np.float32)
    raise ValueError(f"weight {entry['name']!r}: unsupported quantisation {quant['dtype']!r}")


def entry_nbytes(entry: dict[str, Any]) -> int:
    count = int(np.prod([int(s) for s in entry.get("shape", [])], dtype=np.int64))
    return count * _storage_dtype(entry).itemsize


def _shard(folder: Path, name: str) -> Path:
    """A weight shard; inside a fetched npm package it is checked against ``fetch.json``."""

    path = folder / name
    for root in (folder, *folder.parents):
        if (root / RECORD).is_file():
            return verified_file(root, path.relative_to(root).as_posix())
    return path


def read_manifest(manifest: list[dict[str, Any]], folder: Path) -> dict[str, np.ndarray]:
    """All weights of ``manifest`` whose shard files lie in ``folder``, by name."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b"".join(_shard(Path(folder), p).read_bytes() for p in group["paths"])
        offset = 0
        for entry in group["weights"]:
            size = entry_nbytes(entry)
            if offset + size > len(data):
                raise ValueError(
                    f"weight {entry['name']!r} needs bytes {offset}..{offset + size} but the "
                    f"shards {group['paths']} hold only {len(data)}"
                )
            out[entry["name"]] = decode_weight(entry, data[offset : offset + size])
            offset += size
        if offset != len(data):
            raise ValueError(
                f"shards {group['paths']} hold {len(data)} bytes, manifest uses {offset}"
            )
    return out


def read_weights_manifest_file(path: Path) -> dict[str, np.ndarray]:
    """Weights of a layers-style ``*-weights_manifest.json`` (shards beside it)."""
    manifest = json.loads(Path(path).read_text())
    if not isinstance(manifest, list):
        raise ValueError(f"{path}: expected a JSON list of weight groups")
    return read_manifest(manifest, Path(path).parent)
