"""Deterministic samples for an audit: verification pairs, attack pairs, identification split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class PairSample:
    """Pairs as indices into a chip set: ``a[i]`` vs ``b[i]``, ``same[i]``, ``fold[i]``."""

    a: np.ndarray
    b: np.ndarray
    same: np.ndarray
    fold: np.ndarray

    def __len__(self) -> int:
        return len(self.a)

    def take(self, rows: np.ndarray) -> PairSample:
        return PairSample(self.a[rows], self.b[rows], self.same[rows], self.fold[rows])


def select_pairs(pairs: list, per_fold: int) -> list:
    """The first ``per_fold`` matched and ``per_fold`` mismatched pairs of every fold."""
    chosen = []
    for fold in sorted({p.fold for p in pairs}):
        in_fold = [p for p in pairs if p.fold == fold]
        chosen += [p for p in in_fold if p.same][:per_fold]
        chosen += [p for p in in_fold if not p.same][:per_fold]
    return chosen


def pairs_to_indices(pairs: list, index: dict[Path, int]) -> tuple[PairSample, int]:
    """Index pairs whose two images were both usable; returns the sample and #dropped pairs."""
    kept = [p for p in pairs if p.path_a in index and p.path_b in index]
    sample = PairSample(
        a=np.array([index[p.path_a] for p in kept], dtype=np.int64),
        b=np.array([index[p.path_b] for p in kept], dtype=np.int64),
        same=np.array([p.same for p in kept], dtype=bool),
        fold=np.array([p.fold for p in kept], dtype=np.int64),
    )
    return sample, len(pairs) - len(kept)


def spread(rows: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` of ``rows`` spread evenly (keeps folds mixed, deterministic)."""
    if len(rows) <= n:
        return rows
    picks = np.linspace(0, len(rows) - 1, n).round().astype(np.int64)
    return rows[picks]


@dataclass(frozen=True)
class IdentitySplit:
    """Closed-set identification split: enrolment (head training) and probe images."""

    names: list[str]
    train_paths: list[Path]
    train_labels: list[int]
    probe_paths: list[Path]
    probe_labels: list[int]


def identity_split(people: dict[str, list[Path]], *, identities: int, images: int,
                   gallery: int, min_images: int, seed: int) -> IdentitySplit:
    """Pick up to ``identities`` people with enough images; ``gallery`` of each enrol, the rest
    (up to ``images - gallery``) probe."""
    need = max(min_images, gallery + 1)
    eligible = sorted(name for name, files in people.items() if len(files) >= need)
    if len(eligible) < 2:
        raise ValueError(f"identification needs >= 2 identities with >= {need} images; "
                         f"the dataset has {len(eligible)}")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(eligible, size=min(identities, len(eligible)), replace=False))
    split = IdentitySplit(list(chosen), [], [], [], [])
    for label, name in enumerate(chosen):
        files = sorted(people[name])[:images]
        split.train_paths.extend(files[:gallery])
        split.train_labels.extend([label] * len(files[:gallery]))
        split.probe_paths.extend(files[gallery:])
        split.probe_labels.extend([label] * len(files[gallery:]))
    return split
