"""Generated verification protocols: identity-disjoint folds, seeded, pairs.txt round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from facerobust.data.lfw import parse_pairs
from facerobust.eval.protocol import generate_pairs, write_pairs


def _people(n: int, images: int, root: Path = Path("/d")) -> dict[str, list[Path]]:
    return {f"id{i:03d}": [root / f"id{i:03d}" / f"{j}.jpg" for j in range(images)]
            for i in range(n)}


def test_folds_are_identity_disjoint_balanced_and_seeded() -> None:
    people = _people(60, 4)
    pairs = generate_pairs(people, per_fold=5, seed=1)
    assert len(pairs) == 10 * 2 * 5
    fold_ids: dict[int, set[str]] = {}
    for p in pairs:
        fold_ids.setdefault(p.fold, set()).update({p.path_a.parent.name, p.path_b.parent.name})
        assert p.same == (p.path_a.parent == p.path_b.parent) and p.path_a != p.path_b
    folds = list(fold_ids.values())
    assert all(not (a & b) for i, a in enumerate(folds) for b in folds[i + 1:])
    for f in range(10):
        in_fold = [p for p in pairs if p.fold == f]
        assert sum(p.same for p in in_fold) == 5 == sum(not p.same for p in in_fold)
    assert generate_pairs(people, per_fold=5, seed=1) == pairs
    assert generate_pairs(people, per_fold=5, seed=2) != pairs


def test_small_data_gets_fewer_pairs_per_fold_and_too_small_is_named() -> None:
    pairs = generate_pairs(_people(20, 2), per_fold=300, seed=0)
    per_fold = len(pairs) // 20
    assert 1 <= per_fold < 300 and len(pairs) == 20 * per_fold
    with pytest.raises(ValueError, match="needs >= 20 identities; the dataset has 5"):
        generate_pairs(_people(5, 3), per_fold=3, seed=0)
    with pytest.raises(ValueError, match="too few identities with >= 2 images"):
        generate_pairs(_people(30, 1), per_fold=3, seed=0)


def test_written_protocol_reads_back_identically(tmp_path: Path) -> None:
    people = _people(40, 3, root=tmp_path)
    pairs = generate_pairs(people, per_fold=4, seed=0)
    path = write_pairs(pairs, tmp_path / "protocol" / "pairs.txt", tmp_path)
    assert path.read_text().splitlines()[0] == "10 4"
    assert parse_pairs(path, tmp_path, tmp_path) == pairs
