"""Resumable, locked on-disk state of one run folder.

* Every finished unit is written atomically (temp file + ``os.replace``) as
  ``<out>/units/<key>.json`` = ``{"fingerprint": ..., "result": ...}``; tensors (embeddings,
  heads) as ``<out>/tensors/<key>-<fingerprint>.pt``. The fingerprint hashes exactly the
  settings the unit depends on, so a re-run after editing the config reuses every unit whose
  own settings did not change and recomputes the rest; ``kill -9`` loses at most the unit in
  flight.
* A damaged unit or tensor file (truncated, not JSON, not a tensor file) is named in the log
  and recomputed, never a traceback.
* ``<out>/run.lock`` (pid, host, start time) is taken exclusively for the run; a second run
  into the same folder stops at once naming the holder; a lock whose process is gone (same
  host) is stale and taken over.
* ``<out>/run.json`` marks the folder as a facerobust run folder: an existing
  ``results.json`` in a folder without it is not overwritten unless ``force``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

_KEY = re.compile(r"^[A-Za-z0-9_.@=+/-]+$")
RUN_MARKER = "run.json"
LOCK = "run.lock"
log = logging.getLogger("facerobust.audit")


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


def prepare_output_folder(out: Path, *, force: bool = False) -> Path:
    """Create ``out`` (or check it) before any work: a folder, writable, and not holding a
    ``results.json`` of something else (unless ``force``)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as err:
        raise ValueError(f"--out {out} cannot be written: {err.strerror or err}") from None
    foreign = (out / "results.json").exists() and not (out / RUN_MARKER).is_file()
    if foreign and not force:
        raise ValueError(f"--out {out} holds a results.json that is not from a facerobust run; "
                         "choose another folder or pass --force to overwrite it")
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """Exclusive lock of a run folder: ``<out>/run.lock`` with pid, host and start time."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / LOCK
        self.held = False

    def acquire(self) -> None:
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._clear_if_stale()
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(me, handle)
            self.held = True
            return
        raise ValueError(f"{self.path}: could not take the run lock")

    def _clear_if_stale(self) -> None:
        try:
            holder = json.loads(self.path.read_text())
            pid, host = int(holder["pid"]), str(holder["host"])
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("damaged lock file %s: taking it over", self.path)
            self.path.unlink(missing_ok=True)
            return
        if host == socket.gethostname() and not _pid_alive(pid):
            log.warning("stale lock of finished process %d in %s: taking it over", pid,
                        self.path)
            self.path.unlink(missing_ok=True)
            return
        raise ValueError(f"{self.path.parent} is in use by another facerobust run (pid {pid} on "
                         f"{host}, since {holder.get('started', '?')}); wait for it to finish "
                         f"or choose another --out (delete {self.path} if that run is gone)")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


class RunStore:
    """Finished units and tensors of one run folder, each checked against its fingerprint."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.out / RUN_MARKER, {"facerobust_run": True})

    def _path(self, kind: str, key: str, suffix: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"unit key {key!r} has characters outside [A-Za-z0-9_.@=+/-]")
        # a model spec path (models/my-net.toml) in a key stays one file name
        return self.out / kind / f"{key.replace('%', '%25').replace('/', '%2F')}{suffix}"

    def _read_unit(self, key: str) -> dict[str, Any] | None:
        path = self._path("units", key, ".json")
        if not path.is_file():
            return None
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or "fingerprint" not in doc or "result" not in doc:
                raise ValueError("not a unit record")
        except (OSError, ValueError) as err:
            log.warning("damaged unit file %s (%s): recomputing it", path, err)
            return None
        return doc

    def has(self, key: str, fingerprint: str) -> bool:
        doc = self._read_unit(key)
        return doc is not None and doc["fingerprint"] == fingerprint

    def load(self, key: str) -> dict[str, Any]:
        doc = self._read_unit(key)
        if doc is None:
            raise ValueError(f"unit {key} is missing or damaged in {self.out / 'units'}")
        return dict(doc["result"])

    def save(self, key: str, fingerprint: str, payload: dict[str, Any]) -> None:
        write_json_atomic(self._path("units", key, ".json"),
                          {"fingerprint": fingerprint, "result": payload})

    def load_tensors(self, key: str, fingerprint: str) -> dict[str, Any] | None:
        """The tensors saved under ``key`` for ``fingerprint``; ``None`` when absent or damaged
        (the damage is logged; the caller recomputes)."""
        path = self._path("tensors", f"{key}-{fingerprint}", ".pt")
        if not path.is_file():
            return None
        try:
            blob = torch.load(path, weights_only=True)
            if not isinstance(blob, dict):
                raise ValueError("not a tensor dictionary")
        except Exception as err:  # torch raises many types for a damaged file
            log.warning("damaged tensor file %s (%s): recomputing it", path, err)
            return None
        return blob

    def drop_tensors(self, key: str, fingerprint: str) -> None:
        self._path("tensors", f"{key}-{fingerprint}", ".pt").unlink(missing_ok=True)

    def save_tensors(self, key: str, fingerprint: str, tensors: dict[str, Any]) -> None:
        _atomic_write(self._path("tensors", f"{key}-{fingerprint}", ".pt"),
                      lambda h: torch.save(tensors, h))
