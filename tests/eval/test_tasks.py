"""The experiment core: pair sampling, identity splits, batched embedding, goals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facerobust.attacks import Dodging, Impersonation, Misclassification
from facerobust.data.lfw import Pair
from facerobust.eval import tasks
from facerobust.models.base import accepts
from tests.helpers.models import PooledPixels


def _pairs() -> list[Pair]:
    return [Pair(Path(f"{f}{s}{i}a"), Path(f"{f}{s}{i}b"), s, f)
            for f in range(10) for s in (True, False) for i in range(300)]


def test_per_fold_limit_takes_the_first_k_of_every_fold_and_class() -> None:
    pairs = _pairs()
    chosen = tasks.select_pairs(pairs, tasks.pairs_per_fold_limit(pairs, 3))
    assert len(chosen) == 60
    for f in range(10):
        for s in (True, False):
            group = [p for p in pairs if p.fold == f and p.same == s]
            assert [p for p in chosen if p.fold == f and p.same == s] == group[:3]


def test_identity_split_is_seeded_disjoint_and_closed_set() -> None:
    people = {f"p{i}": [Path(f"p{i}/{j}.jpg") for j in range(3 + i)] for i in range(8)}
    split = tasks.identity_split(people, identities=3, images=5, gallery=2, min_images=5,
                                 seed=0)
    assert split == tasks.identity_split(people, identities=3, images=5, gallery=2,
                                         min_images=5, seed=0)
    assert len(split.names) == 3 and split.names == sorted(split.names)
    assert all(len(people[n]) >= 5 for n in split.names)
    assert len(split.train_paths) == 6 and len(split.probe_paths) == 9
    assert not set(split.train_paths) & set(split.probe_paths)
    assert set(split.probe_labels) <= set(split.train_labels)
    seeds = {tuple(tasks.identity_split(people, identities=3, images=5, gallery=2,
                                        min_images=5, seed=s).names) for s in range(8)}
    assert len(seeds) > 1
    root = Path("/data")
    moved = {k: [root / p for p in v] for k, v in people.items()}
    saved = tasks.identity_split(moved, identities=3, images=5, gallery=2, min_images=5,
                                 seed=0)
    assert tasks.IdentitySplit.from_dict(saved.to_dict(root), root) == saved
    with pytest.raises(ValueError, match="need >= 2 identities with >= 50 images"):
        tasks.identity_split(people, identities=3, images=60, gallery=2, min_images=50, seed=0)
    with pytest.raises(ValueError, match="gallery_per_identity must be >= 1 and smaller"):
        tasks.identity_split(people, identities=3, images=2, gallery=2, min_images=2, seed=0)


def test_embed_batches_equal_one_pass_and_spread_is_even() -> None:
    model = PooledPixels()
    x = torch.rand(7, 3, 150, 150, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(tasks.embed(model, x, batch_size=3), model(x), atol=1e-6)
    assert tasks.spread(np.arange(10), 3).tolist() == [0, 4, 9]
    assert tasks.spread(np.arange(2), 5).tolist() == [0, 1]
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        tasks.embed(model, x, batch_size=0)


def test_goals_map_to_criteria_and_scores() -> None:
    model = PooledPixels()
    x = torch.rand(4, 3, 150, 150, generator=torch.Generator().manual_seed(1))
    ref = tasks.embed(model, x)
    assert isinstance(tasks.make_criterion("dodging", model, ref), Dodging)
    assert isinstance(tasks.make_criterion("impersonation", model, ref), Impersonation)
    assert isinstance(tasks.make_criterion("untargeted", model, torch.zeros(4).long()),
                      Misclassification)
    with pytest.raises(ValueError, match="unknown goal 'dodge'"):
        tasks.make_criterion("dodge", model, ref)
    success, dist = tasks.score_goal(model, "dodging", x, ref, batch_size=2)
    assert not success.any() and np.allclose(dist, 0, atol=1e-5)  # own photo: accepted
    success, _ = tasks.score_goal(model, "impersonation", x, ref, batch_size=2)
    assert success.all()
    labels = np.array([0, 1, 2, 3])
    targets = tasks.targets_for(labels, 4, seed=0)
    assert (targets != labels).all() and ((targets >= 0) & (targets < 4)).all()
    dist = np.array([0.5, 1.5, 0.5, 1.5])
    same = np.array([True, True, False, False])
    accepted = accepts(dist, float(model.threshold))
    assert tasks.decided_correctly("dodging", accepted, same).tolist() == [1, 0, 0, 0]
    assert tasks.decided_correctly("impersonation", accepted, same).tolist() == [0, 0, 0, 1]
