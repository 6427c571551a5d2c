"""Shards: the samples of one unit split into independent pieces of ``[run] shard_size``.

A sharded unit (attack, minimal-perturbation, defense and fusion units, and the adversarial
data set detector units share) computes each shard on its own -- reading only that shard's
chips, with its own seed -- and merges the per-sample parts into the unit's result. What every
shard of a unit needs (a defense's clean figures and attacked samples) is its *state*,
computed once (by the driver on Ray, which hands it to the shards through the object store).
Data several units need (:class:`SharedData`, the detectors' adversarial set) is computed once
as shards of its own and saved in the run store before the units that need it run. A detector
unit (a :class:`Dependent` on that set) is sharded by *variant* instead of by sample: shard
``i`` is variant ``i``, every one seeded with the unit's seed.

Both executors use the same shards and seeds, so the local executor and Ray (one task per
shard) give identical results; a shard's part is saved in the run store as it
finishes (``tensors/<unit key>.shard-<i>-<fingerprint>.pt``), so a killed run recomputes only
the shards in flight.

Shard ``i`` of a unit seeded ``s`` is seeded :func:`shard_seed` ``(s, i)``: ``s`` itself for
shard 0 and a hash of ``(s, i)`` for the others. A unit of at most ``shard_size`` samples is
therefore one shard computed exactly as before sharding existed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from facerobust.eval.config import settings_hash
from facerobust.eval.results import Unit
from facerobust.eval.store import RunStore

log = logging.getLogger("facerobust.audit")
Part = dict[str, Any]  # one shard's per-sample outcome (tensors, lists, numbers; torch.save-able)


def shard_seed(seed: int, index: int) -> int:
    """The seed of shard ``index`` of a unit seeded ``seed``."""
    if index == 0:
        return seed
    return int(hashlib.sha256(f"{seed}:shard-{index}".encode()).hexdigest()[:8], 16)


def shard_bounds(n: int, size: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` of every shard of ``n`` samples, ``size`` each (the last may be smaller)."""
    if size < 1:
        raise ValueError(f"run.shard_size: must be >= 1, got {size}")
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


def sharding(samples: int, size: int) -> list[dict[str, int]]:
    """The fingerprint part saying how a unit of at most ``samples`` samples is sharded:
    nothing when it is one shard (computed as before sharding existed, so run folders of
    older versions stay valid), else the shard size."""
    return [] if samples <= size else [{"shard_size": size}]


def shard_key(key: str, index: int) -> str:
    return f"{key}.shard-{index}"


@dataclass
class ShardedUnit:
    """A unit computed as ``len(bounds())`` shards: ``run(i)`` -> part, ``merge(parts)`` ->
    the unit's result. Calling it runs every shard here, in order, and merges. ``state``
    (optional) returns what every shard shares, computed once; ``adopt`` installs a state
    computed elsewhere (a Ray worker receives the driver's)."""

    bounds: Callable[[], list[tuple[int, int]]]
    run: Callable[[int], Part]
    merge: Callable[[list[Part]], Any]
    state: Callable[[], Any] | None = None
    adopt: Callable[[Any], None] | None = None

    def __call__(self) -> Any:
        return self.merge([self.run(i) for i in range(len(self.bounds()))])


@dataclass
class SharedData:
    """Data several units need (its ``merge`` returns a dict of tensors), computed once as
    shards and saved in the run store under ``key`` and ``fingerprint``."""

    key: str
    fingerprint: str
    shards: ShardedUnit

    def compute(self, store: RunStore | None) -> Part:
        """From the run store, or computed here (shards reused and saved) and saved."""
        saved = store.load_tensors(self.key, self.fingerprint) if store is not None else None
        if saved is None:
            saved = run_here(self.shards, self.key, self.fingerprint, store)
            if store is not None:
                store.save_tensors(self.key, self.fingerprint, saved)
                ShardParts(store, self.key, self.fingerprint, self.shards.bounds()).drop()
        return saved


@dataclass
class Dependent:
    """A unit that needs :class:`SharedData` first (a detector unit: the adversarial set).
    Called here it computes what it needs itself; the Ray executor computes ``needs`` first,
    once for every unit needing them, and hands them to the workers. ``fn`` may be a
    :class:`ShardedUnit` (a detector's variants): its shards then run once ``needs`` are in."""

    needs: list[SharedData]
    fn: Callable[[], Unit] | ShardedUnit

    def __call__(self) -> Unit:
        return self.fn()


def sharded_of(fn: Any) -> ShardedUnit | None:
    """The shards of a planned unit: ``fn`` itself when sharded, the sharded unit a
    :class:`Dependent` wraps, else ``None`` (a unit computed whole)."""
    if isinstance(fn, Dependent):
        fn = fn.fn
    return fn if isinstance(fn, ShardedUnit) else None


def part_fingerprint(fingerprint: str, index: int, bounds: tuple[int, int]) -> str:
    return settings_hash(["shard", fingerprint, index, list(bounds)])


class ShardParts:
    """The saved parts of one sharded unit in the run store (``key``, unit ``fingerprint``)."""

    def __init__(self, store: RunStore | None, key: str, fingerprint: str,
                 bounds: list[tuple[int, int]]) -> None:
        self.store, self.key, self.bounds = store, key, bounds
        self.fps = [part_fingerprint(fingerprint, i, b) for i, b in enumerate(bounds)]

    def load(self, index: int) -> Part | None:
        if self.store is None:
            return None
        return self.store.load_tensors(shard_key(self.key, index), self.fps[index])

    def save(self, index: int, part: Part) -> None:
        if self.store is not None:
            self.store.save_tensors(shard_key(self.key, index), self.fps[index], part)

    def drop(self) -> None:
        """Forget every part (once the merged unit is saved)."""
        if self.store is not None:
            for i, fp in enumerate(self.fps):
                self.store.drop_tensors(shard_key(self.key, i), fp)


def log_reuse(key: str, found: list[bool]) -> None:
    if any(found):
        log.info("%s: reusing %d of %d finished shards", key, sum(found), len(found))


def run_here(unit: ShardedUnit, key: str, fingerprint: str, store: RunStore | None,
             on_shard: Callable[[str], None] | None = None) -> Any:
    """Every shard of ``unit`` in this process, reusing the parts saved by an earlier
    (killed) run and saving each new one, then the merged result."""
    bounds = unit.bounds()
    saved = ShardParts(store, key, fingerprint, bounds)
    found = [saved.load(i) for i in range(len(bounds))]
    log_reuse(key, [p is not None for p in found])
    parts: list[Part] = []
    for i, part in enumerate(found):
        if part is None:
            if on_shard is not None:
                on_shard(f"{key} shard {i + 1}/{len(bounds)}")
            part = unit.run(i)
            saved.save(i, part)
        parts.append(part)
    return unit.merge(parts)
