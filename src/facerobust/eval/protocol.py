"""Verification protocols generated when the data has none (identity folders, listings).

LFW's rules: 10 folds with disjoint identities; every fold holds ``per_fold`` matched pairs (two
images of one identity) and ``per_fold`` mismatched pairs (two identities of that fold), drawn
with a seeded generator. :func:`write_pairs` writes the protocol in ``pairs.txt`` format
(image fields are paths relative to the dataset root), which
:func:`facerobust.data.lfw.parse_pairs` and ``[data] pairs`` read back, so anyone can rerun
the same experiment.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facerobust.data.lfw import Pair

FOLDS = 10


def _fold_pairs(people: dict[str, list[Path]], names: list[str], want: int,
                rng: np.random.Generator, fold: int) -> tuple[list[Pair], list[Pair]]:
    """Up to ``want`` distinct matched and mismatched pairs among ``names``."""
    multi = [n for n in names if len(people[n]) >= 2]
    matched: dict[tuple[Path, Path], Pair] = {}
    mismatched: dict[tuple[Path, Path], Pair] = {}
    for _ in range(want * 20):
        if len(matched) >= want or not multi:
            break
        name = multi[rng.integers(len(multi))]
        i, j = sorted(rng.choice(len(people[name]), size=2, replace=False).tolist())
        a, b = people[name][i], people[name][j]
        matched.setdefault((a, b), Pair(a, b, True, fold))
    for _ in range(want * 20):
        if len(mismatched) >= want or len(names) < 2:
            break
        x, y = sorted(rng.choice(len(names), size=2, replace=False).tolist())
        a = people[names[x]][rng.integers(len(people[names[x]]))]
        b = people[names[y]][rng.integers(len(people[names[y]]))]
        mismatched.setdefault((a, b), Pair(a, b, False, fold))
    return list(matched.values()), list(mismatched.values())


def generate_pairs(people: dict[str, list[Path]], *, per_fold: int, seed: int,
                   folds: int = FOLDS) -> list[Pair]:
    """Seeded ``folds``-fold verification pairs with identity-disjoint folds. Every fold gets
    the same number of matched and mismatched pairs: ``per_fold`` or, when the data is too
    small for that, the most every fold can hold."""
    if per_fold < 1 or folds < 2:
        raise ValueError(f"need per_fold >= 1 and folds >= 2, got {per_fold} and {folds}")
    rng = np.random.default_rng(seed)
    names = sorted(people)
    if len(names) < 2 * folds:
        raise ValueError(f"a {folds}-fold protocol with disjoint identities needs >= "
                         f"{2 * folds} identities; the dataset has {len(names)}")
    order = rng.permutation(len(names))
    groups = [[names[i] for i in order[f::folds]] for f in range(folds)]
    drawn = [_fold_pairs(people, group, per_fold, rng, f) for f, group in enumerate(groups)]
    k = min(min(len(m), len(d)) for m, d in drawn)
    if k == 0:
        raise ValueError(f"cannot build {folds} folds with a matched pair in each: too few "
                         "identities with >= 2 images")
    return [p for m, d in drawn for p in (*m[:k], *d[:k])]


def write_pairs(pairs: list[Pair], path: Path, root: Path) -> Path:
    """``pairs`` in pairs.txt format, image fields relative to the dataset ``root``."""
    folds = sorted({p.fold for p in pairs})
    per_fold = sum(1 for p in pairs if p.fold == folds[0] and p.same)
    lines = [f"{len(folds)} {per_fold}"]
    for p in pairs:
        a, b = p.path_a.relative_to(root).as_posix(), p.path_b.relative_to(root).as_posix()
        ident_a, ident_b = p.path_a.parent.name, p.path_b.parent.name
        lines.append(f"{ident_a} {a} {b}" if p.same else f"{ident_a} {a} {ident_b} {b}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
