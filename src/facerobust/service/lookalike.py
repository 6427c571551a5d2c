"""The ``/identify`` oracle, measured: enroll a gallery of a dataset's people, then comb the
photos of *other* people through ``/identify`` with one client key until the gate names
someone (a natural look-alike at its threshold), and try each at ``/verify``. Run against a
gate without limits and one with them, it says how many queries the search needs and what
the per-key failure budget and rate limits make of that (issue 26, item 1).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from facerobust.data.sources import Dataset
from facerobust.eval.datasource import DataSource, as_dataset
from facerobust.eval.results_file import write_result_file
from facerobust.eval.results_gate import LookalikeHit, LookalikeResults
from facerobust.eval.stats import Rate
from facerobust.service.blackbox import LIMIT_KEYS, GateAccess
from facerobust.service.client import GateClient, GateLockedOut
from facerobust.service.config import LimitsSection
from facerobust.service.summary import budget_time


@dataclass(frozen=True)
class LookalikeOptions:
    gallery: int = 50  # identities enrolled, one photo each
    probes: int = 300  # attacker photos (of people not enrolled) sent to /identify
    seed: int = 0
    limits: LimitsSection | None = None  # the gate's limits, for the time-at-limits figure
    wait: bool = True  # sleep Retry-After on 429 (a patient attacker) ...
    max_wait_s: float = 600.0  # ... up to this long in total
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("gallery", "probes"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")


def split_people(ds: Dataset, options: LookalikeOptions) -> tuple[list[tuple[str, Path]],
                                                                  list[tuple[str, Path]]]:
    """``(gallery, probes)``: one photo of each of ``gallery`` people, and up to ``probes``
    photos of everyone else, shuffled by the seed."""
    people = sorted(p for p, photos in ds.people.items() if photos)
    rng = random.Random(options.seed)
    rng.shuffle(people)
    if len(people) <= options.gallery:
        raise ValueError(f"the dataset has {len(people)} people: --gallery {options.gallery} "
                         "leaves no one to search with")
    gallery = [(p, sorted(ds.people[p])[0]) for p in people[:options.gallery]]
    probes = [(p, f) for p in people[options.gallery:] for f in sorted(ds.people[p])]
    rng.shuffle(probes)
    return gallery, probes[:options.probes]


def enroll_gallery(gate: GateAccess, client: GateClient, gallery: list[tuple[str, Path]],
                   skipped: list[dict[str, str]]) -> int:
    """Enroll (replace) each gallery photo; the ones the gate refuses are skipped."""
    enrolled = 0
    for person, photo in gallery:
        try:
            client.enroll(person, [photo.read_bytes()], gate.admin_key, mode="replace")
            enrolled += 1
        except ValueError as err:
            skipped.append({"path": str(photo), "reason": str(err)})
    return enrolled


def comb(client: GateClient, probes: list[tuple[str, Path]], progress: bool
         ) -> tuple[list[LookalikeHit], int, int | None, str]:
    """Query ``/identify`` with each probe; ``(hits, answered, stopped_at, stopped_by)``."""
    hits: list[LookalikeHit] = []
    answered = 0
    items: Any = tqdm(probes, desc="/identify", unit="query") if progress else probes
    for i, (person, photo) in enumerate(items, start=1):
        data = photo.read_bytes()
        try:
            answer = client.identify(data)
            if answer.status != 200:
                continue  # no face etc.: not an answer
            answered += 1
            if answer.accepted:
                verified = client.verify(data, answer.identity, "image/jpeg").accepted
                hits.append(LookalikeHit(i, str(photo), person, answer.identity, answer.score,
                                         verified))
        except GateLockedOut as err:
            return hits, answered, i, str(err)
    return hits, answered, None, ""


def run_lookalike(gate: GateAccess, options: LookalikeOptions, *,
                  source: Dataset | DataSource | Path | str, out: Path) -> Path:
    """Run the search (see the module docstring); writes ``out`` (kind ``gate-lookalike``)."""
    o = options
    gallery, probes = split_people(as_dataset(source), o)
    skipped: list[dict[str, str]] = []
    admin = GateClient(gate.url, gate.admin_key)
    client = GateClient(gate.url, gate.key, wait=o.wait, max_wait_s=o.max_wait_s)
    try:
        health = admin.health()
        enrolled = enroll_gallery(gate, admin, gallery, skipped)
        hits, answered, stopped_at, stopped_by = comb(client, probes, o.progress)
    finally:
        admin.close()
        client.close()
    first = hits[0].query if hits else None
    limits = {} if o.limits is None else {k: getattr(o.limits, k) for k in LIMIT_KEYS}
    result = LookalikeResults(
        health, enrolled, answered, Rate(len(hits), answered),
        Rate(sum(h.verified for h in hits), len(hits)), first, stopped_at, stopped_by,
        limits, None if first is None else time_to_query(first, o.limits), hits, skipped)
    return write_result_file(out, result)


def time_to_query(query: int, limits: LimitsSection | None) -> float | None:
    """Seconds one key needs to make its ``query``-th query at ``limits``: the rate limit,
    and the failure budget (``max_rejections`` failed queries per lock-out window)."""
    if limits is None:
        return None
    at_rate = budget_time(query, limits) or 0.0
    budget = limits.max_rejections
    windows = 0 if budget <= 0 else (query - 1) // budget
    return max(at_rate, windows * limits.lockout_window_s)


__all__ = ["LookalikeOptions", "run_lookalike", "time_to_query"]
