"""Resumable on-disk state for an audit run.

Every finished unit of work is written atomically (temp file + ``os.replace``) under
``<out>/units/<key>.json`` and, for tensors, ``<out>/tensors/<key>.pt``. A re-run of the same
configuration into the same folder skips finished units, so ``kill -9`` loses at most the unit
in flight. A different configuration is refused rather than mixed in.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

_KEY = re.compile(r"^[A-Za-z0-9_.@=+-]+$")


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, payload: Any) -> None:
    blob = json.dumps(payload, indent=2, sort_keys=False).encode()
    _atomic_write(path, lambda handle: handle.write(blob))


class RunStore:
    """Finished units of one audit run, keyed by name."""

    def __init__(self, out: Path, fingerprint: str) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        lock = self.out / "run.lock.json"
        if lock.is_file():
            previous = json.loads(lock.read_text()).get("fingerprint")
            if previous != fingerprint:
                raise ValueError(
                    f"{self.out} holds a run of a different configuration "
                    f"({previous} != {fingerprint}); choose another --out folder"
                )
        else:
            write_json_atomic(lock, {"fingerprint": fingerprint})

    def _path(self, kind: str, key: str, suffix: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"unit key {key!r} has characters outside [A-Za-z0-9_.@=+-]")
        return self.out / kind / f"{key}{suffix}"

    def has(self, key: str) -> bool:
        return self._path("units", key, ".json").is_file()

    def load(self, key: str) -> dict[str, Any]:
        return json.loads(self._path("units", key, ".json").read_text())

    def save(self, key: str, payload: dict[str, Any]) -> None:
        write_json_atomic(self._path("units", key, ".json"), payload)

    def has_tensors(self, key: str) -> bool:
        return self._path("tensors", key, ".pt").is_file()

    def save_tensors(self, key: str, tensors: dict[str, Any]) -> None:
        _atomic_write(self._path("tensors", key, ".pt"), lambda h: torch.save(tensors, h))

    def load_tensors(self, key: str) -> dict[str, Any]:
        return torch.load(self._path("tensors", key, ".pt"), weights_only=True)
