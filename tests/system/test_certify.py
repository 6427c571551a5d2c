"""Certified decisions of a face system (a tiny seeded pooled-pixel model): the smoothed base
decision is the system's own, the radius shrinks with sigma, abstention rises as alpha falls,
and the adaptive EOT-PGD attack flips no certified decision."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facerobust.defenses import parse_defense
from facerobust.defenses.smoothing import SmoothingOptions
from facerobust.defenses.smoothing_attack import SmoothAttackOptions
from facerobust.system import FaceSystem, Gallery, Probe
from facerobust.system.certify import (
    ACCEPT,
    REJECT,
    certified_rate,
    certify_probes,
    gallery_decider,
    verification_decider,
)
from facerobust.system.smoothed import without_noise
from tests.helpers.models import PooledPixels

SIZE = 150


def chip(cells: torch.Tensor) -> torch.Tensor:
    """An 8x8 gray pattern blown up to one canonical chip (1, 3, 150, 150)."""
    up = torch.nn.functional.interpolate(cells.view(1, 1, 8, 8), size=SIZE, mode="nearest")
    return up.expand(1, 3, SIZE, SIZE).contiguous()


@pytest.fixture(scope="module")
def system() -> FaceSystem:
    return FaceSystem(PooledPixels(), threshold=1.0)


@pytest.fixture(scope="module")
def people() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [0.35 + 0.3 * torch.rand(64, generator=gen) for _ in range(4)]


def boundary_probes(base: torch.Tensor, distances: np.ndarray) -> torch.Tensor:
    """Chips whose pooled embedding lies ``distances`` from ``base``'s (PooledPixels scales
    centred cells by 4)."""
    v = torch.linspace(-1, 1, 64)
    v = (v - v.mean()) / (v - v.mean()).norm()
    return torch.cat([chip(base + float(d) / 4 * v) for d in distances])


def template(system: FaceSystem, cells: torch.Tensor) -> np.ndarray:
    return system.embed(chip(cells))[0].numpy()


def test_base_decisions_are_the_systems(system: FaceSystem, people: list[torch.Tensor]) -> None:
    chips = boundary_probes(people[0], np.array([0.5, 0.99, 1.01, 2.0]))
    t = template(system, people[0])
    hard = verification_decider(system, t).hard(chips).tolist()
    assert hard == [ACCEPT, ACCEPT, REJECT, REJECT]
    soft = verification_decider(system, t).soft(chips)
    assert soft.argmax(1).tolist() == hard and torch.allclose(soft.sum(1), torch.ones(4))
    gallery = Gallery(("a", "b", "c"), np.stack([template(system, p) for p in people[:3]]))
    ids = gallery_decider(system, gallery).hard(torch.cat([chip(p) for p in people]))
    expected = []
    for p in people:
        emb = system.embed(chip(p))[0].numpy()
        d = system.identify(Probe("", chip(p), emb), gallery)
        expected.append(gallery.names.index(d.identity) if d.accepted else 3)
    assert ids.tolist() == expected == [0, 1, 2, 3]


def test_radius_shrinks_with_sigma(system: FaceSystem, people: list[torch.Tensor]) -> None:
    t = template(system, people[0])
    chips = boundary_probes(people[0], np.array([0.0, 0.3, 0.6]))
    deciders = [verification_decider(system, t)] * 3
    mean_radius = []
    for sigma in (0.12, 0.25, 0.5):
        probes = certify_probes(deciders, chips, [ACCEPT] * 3,
                                SmoothingOptions(sigma=sigma, n0=20, n=200, seed=1))
        assert all(p.correct and p.certificate.radius is not None for p in probes)
        mean_radius.append(np.mean([p.certificate.radius for p in probes]))
    assert mean_radius[0] < mean_radius[1] < mean_radius[2]


def test_abstention_rises_as_alpha_falls(system: FaceSystem,
                                         people: list[torch.Tensor]) -> None:
    t = template(system, people[1])
    distances = np.linspace(0.25, 0.55, 12)  # where sigma 0.5 turns accepts to rejects
    chips = boundary_probes(people[1], distances)
    deciders = [verification_decider(system, t)] * len(chips)
    expected = [ACCEPT if d <= 1.0 else REJECT for d in distances]
    abstained = []
    for alpha in (0.2, 0.01, 1e-6):
        probes = certify_probes(deciders, chips, expected,
                                SmoothingOptions(sigma=0.5, n0=20, n=200, alpha=alpha, seed=4))
        abstained.append(sum(p.certificate.abstained for p in probes))
    assert abstained[0] <= abstained[1] <= abstained[2] and abstained[0] < abstained[2]


def test_attack_flips_no_certified_decision(system: FaceSystem,
                                            people: list[torch.Tensor]) -> None:
    t = template(system, people[2])
    distances = np.array([0.6, 0.9, 0.97, 1.03, 1.1, 1.5])
    chips = boundary_probes(people[2], distances)
    expected = [ACCEPT if d <= 1.0 else REJECT for d in distances]
    opts = SmoothingOptions(sigma=0.25, n0=20, n=300, alpha=0.01, seed=5)
    probes = certify_probes([verification_decider(system, t)] * len(chips), chips, expected,
                            opts, SmoothAttackOptions(steps=10, eot=8))
    attacked = [p for p in probes if p.attack_flipped is not None]
    assert attacked and all(p.certificate.radius is not None for p in attacked)
    assert sum(bool(p.attack_flipped) for p in attacked) == 0
    assert all(p.attack_distance is not None and p.certificate.radius is not None
               and p.attack_distance <= p.certificate.radius + 1e-4 for p in attacked)
    k, n = certified_rate(probes, 0.0)
    assert n == 6 and k == sum(p.correct for p in probes)
    row = probes[0].to_dict()
    assert row["decision"] == "accept" and row["radius"] == probes[0].certificate.radius


def test_mismatched_lengths_are_refused(system: FaceSystem,
                                        people: list[torch.Tensor]) -> None:
    with pytest.raises(ValueError, match="one decider and one expected class per chip"):
        certify_probes([], chip(people[0]), [1], SmoothingOptions())
    with pytest.raises(ValueError, match="the gallery is empty"):
        gallery_decider(system, Gallery((), np.zeros((0, 64), dtype=np.float32)))


def test_smooth_defense_makes_the_system_decide_by_majority(people: list[torch.Tensor]
                                                            ) -> None:
    smoothed = FaceSystem(PooledPixels(), threshold=1.0, defense="smooth:sigma=0.25,n=60")
    assert smoothed.smoothing is not None and smoothed.smoothing.n == 60
    t = template(smoothed, people[0])[None]
    genuine, far = boundary_probes(people[0], np.array([0.3, 2.0]))
    probe = Probe("", genuine[None], smoothed.embed(genuine[None])[0].numpy())
    ok = smoothed.verify(probe, "a", t)
    assert ok.accepted and ok.reason == "match (smoothed)"
    assert sum(ok.flags["smoothed.counts"]) == 60 and ok.flags["smoothed.seconds"] >= 0
    no = smoothed.verify(Probe("", far[None], smoothed.embed(far[None])[0].numpy()), "a", t)
    assert not no.accepted and no.reason == "smoothed decision: no match"
    gallery = Gallery(("a",), t)
    assert smoothed.identify(probe, gallery).identity == "a"
    assert FaceSystem(PooledPixels(), threshold=1.0).smoothing is None
    assert torch.equal(smoothed.embed(genuine[None]), smoothed.embed(genuine[None]))
    assert without_noise(parse_defense("jpeg:q=75+smooth:sigma=0.5")).spec == "jpeg:q=75"
    assert without_noise(parse_defense("smooth")).spec == "none"
    with pytest.raises(ValueError, match="smooth:sigma=-1.*sigma must be > 0"):
        FaceSystem(PooledPixels(), threshold=1.0, defense="smooth:sigma=-1")
