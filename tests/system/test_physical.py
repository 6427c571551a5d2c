"""Physical accessories through the face system (issue 27): a tiny seeded model where the
accessory must succeed and the random control must not; held-out draws never optimised."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from facerobust.attacks.accessory import nearest_palette, palette_tensor, region
from facerobust.cli import main
from facerobust.data.capture import Capture
from facerobust.data.warp import ChipWarp
from facerobust.system import FaceSystem
from facerobust.system import capture_variation as cv
from facerobust.system.physical import (
    PhysicalOptions,
    control_texture,
    goal_loss,
    judge,
    optimise,
    shot_of,
    wear,
)
from tests.helpers import gate as g
from tests.helpers.models import PooledPixels

ATTACKER = "Alejandro_Toledo"


@pytest.fixture(scope="module")
def system() -> FaceSystem:
    torch.set_num_threads(1)
    return FaceSystem(PooledPixels(), threshold=4.0, capture=Capture("hog"))


def test_held_out_draws_are_never_training_draws() -> None:
    variation = cv.CaptureVariation()
    train = cv.draws(variation, 64, 0, "train")
    held = cv.draws(variation, 16, 0, "heldout")
    assert not {d.shift for d in train} & {d.shift for d in held}
    assert cv.draws(variation, 4, 0, "train") == train[:4]  # seeded
    with pytest.raises(ValueError, match="purpose must be one of"):
        cv.draws(variation, 1, 0, "test")


def test_the_accessory_lands_inside_its_region_on_the_face(system: FaceSystem) -> None:
    shot = shot_of(system, g.demo_photo(ATTACKER, 2), "p")
    white = torch.ones(1, 3, 150, 150)
    worn = wear(shot, white, region("forehead"))
    chip_before = ChipWarp(shot.plan)(shot.photo)
    chip_after = ChipWarp(shot.plan)(worn)
    changed = (chip_after - chip_before).abs().sum(1)[0] > 0.05
    mask = region("forehead")[0, 0] > 0
    grown = torch.nn.functional.max_pool2d(mask[None, None].float(), 5, 1, 2)[0, 0] > 0
    assert changed.any() and not (changed & ~grown).any()  # only the region (+ blur edge)


def test_optimisation_only_takes_training_draws(system: FaceSystem) -> None:
    shot = shot_of(system, g.demo_photo(ATTACKER, 2), "p")
    own = torch.zeros(1, 64)
    held = cv.draws(cv.CaptureVariation(), 2, 0, "heldout")
    with pytest.raises(ValueError, match="training capture draws only"):
        optimise(system, [shot], own, PhysicalOptions(steps=1), train=held)
    with pytest.raises(ValueError, match="held-out capture draws only"):
        judge(system, [shot], control_texture(PhysicalOptions()), own.numpy(),
              PhysicalOptions(), cv.draws(cv.CaptureVariation(), 2, 0, "train"))


def test_dodging_mask_succeeds_where_a_random_one_does_not(system: FaceSystem) -> None:
    """Clean photos of the attacker are accepted as themself (distance < 4); the optimised
    mask gets every held-out capture rejected, a random mask of the same shape none, and the
    printability and smoothness terms fall while it optimises."""
    shots = [shot_of(system, g.demo_photo(ATTACKER, i), f"p{i}") for i in (2, 4)]
    own = system.probe(g.demo_photo(ATTACKER, 1)).embedding[None]
    assert all(system.verify(system.probe(g.demo_photo(ATTACKER, i)), "a", own).accepted
               for i in (2, 4))
    opts = PhysicalOptions(accessory="mask", goal="dodging", steps=30, eot_samples=2, lr=0.5,
                           smoothness=0.05, printability=0.1)
    texture, trace = optimise(system, shots, torch.from_numpy(own), opts)
    held = cv.draws(opts.variation, 3, 0, "heldout")
    attack = judge(system, shots, texture, own, opts, held)
    control = judge(system, shots, control_texture(opts), own, opts, held)
    assert attack.success.k == attack.success.n == 6 and control.success.k == 0
    assert trace.goal[-1] < trace.goal[0] and trace.tv[-1] < trace.tv[0]
    assert np.mean(trace.nps[-5:]) < trace.nps[0]
    palette = palette_tensor()
    assert torch.equal(nearest_palette(texture, palette), texture)  # printed colours only


def test_physical_attack_cli_writes_printables_and_a_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["physical-attack", "--model", "tests.helpers.models:PooledPixels",
                 "--threshold", "4", "--accessory", "cheek", "--goal", "dodging",
                 "--attackers", "1", "--photos", "3", "--steps", "2", "--eot-samples", "1",
                 "--heldout", "1", "--dataset", "lfw-demo", "--no-progress",
                 "--also", "tests.helpers.models:TinyResNet", "--out", str(out)]) == 0
    files = {p.name for p in out.iterdir()}
    assert {"results.json", "report.html"} <= files
    assert any(f.endswith("-cheek-dodging.png") for f in files)
    assert any(f.endswith("-cheek-dodging.pdf") for f in files)
    assert "What was simulated" in (out / "report.html").read_text()
    doc = json.loads((out / "results.json").read_text())
    row = doc["rows"][0]
    assert row["accessory"] == "cheek" and set(row["success"]) == {"k", "n", "rate", "ci95"}
    assert row["also"]["tests.helpers.models:TinyResNet"]["n"] == row["success"]["n"]
    assert main(["physical-attack", "--also", "dlib-resnet@nonsense", "--out",
                 str(tmp_path / "y")]) == 2
    assert "nonsense" in capsys.readouterr().err
    assert main(["physical-attack", "--accessory", "hat", "--out", str(tmp_path / "x")]) == 2
    assert "unknown accessory 'hat'" in capsys.readouterr().err
    assert main(["physical-attack", "--adaptive", "1", "--out", str(tmp_path / "y")]) == 2
    assert "--adaptive needs the detectors to evade" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before any work


def test_identification_goals_name_someone_else_or_the_victim(system: FaceSystem) -> None:
    """Closed-set identification over three people: the untargeted mask gets the attacker
    named as someone else (or nobody), the targeted one as the victim, where the random mask
    of the same shape leaves the attacker named as themself. (A mask over the lower face of
    this whole-chip pooled model reaches the victim in 1 of 6 captures; the random one in 0.)"""
    people = (ATTACKER, "Adam_Sandler", "Al_Sharpton")
    gallery = np.concatenate([system.probe(g.demo_photo(p, 1)).embedding[None] for p in people])
    shots = [shot_of(system, g.demo_photo(ATTACKER, i), f"p{i}") for i in (2, 4)]
    held = cv.draws(cv.CaptureVariation(), 3, 0, "heldout")
    for goal, index, least in (("untargeted", 0, 4), ("targeted", 1, 1)):
        opts = PhysicalOptions(accessory="mask", goal=goal, steps=30, eot_samples=2, lr=0.5,
                               smoothness=0.05, printability=0.1)
        texture, trace = optimise(system, shots, torch.from_numpy(gallery), opts, index=index)
        attack = judge(system, shots, texture, gallery, opts, held, index)
        control = judge(system, shots, control_texture(opts), gallery, opts, held, index)
        assert control.success.k == 0 and attack.success.k >= least, (goal, attack, control)
        assert trace.goal[-1] < trace.goal[0]


def test_goal_loss_of_the_identification_goals_is_zero_once_met() -> None:
    dist = torch.tensor([[1.0, 3.0, 0.5]])  # template 2 nearest and within threshold 2
    opts = PhysicalOptions(goal="targeted", margin=0.1)
    assert float(goal_loss(dist, 2.0, opts, index=2)) == 0.0
    assert float(goal_loss(dist, 2.0, opts, index=0)) > 0  # template 0 is not the nearest
    untargeted = PhysicalOptions(goal="untargeted", margin=0.1)
    assert float(goal_loss(dist, 2.0, untargeted, index=0)) == 0.0  # someone else nearer
    assert float(goal_loss(dist, 2.0, untargeted, index=2)) > 0
