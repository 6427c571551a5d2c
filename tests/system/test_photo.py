"""Differentiable alignment and photo-space models (tiny stand-in model, demo photos)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from facerobust.attacks.criteria import Impersonation
from facerobust.attacks.registry import build_attack, full_budget
from facerobust.data import align, chips
from facerobust.data.warp import ChipWarp, paste_chip_delta
from facerobust.system.photo import PhotoFaceModel, PhotoOptions
from tests.helpers.gate import DEMO
from tests.helpers.models import PooledPixels


def _photo(name: str, scale: int = 1) -> np.ndarray:
    rgb, _ = chips.read_image(sorted((DEMO / name).glob("*.jpg"))[0].read_bytes())
    assert rgb is not None
    return rgb if scale == 1 else cv2.resize(rgb, None, fx=scale, fy=scale)


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].double() / 255


@pytest.mark.parametrize(("scale", "levels"), [(1, 0), (3, 1)])
def test_warp_matches_the_gates_chip(scale: int, levels: int) -> None:
    rgb = _photo("Alejandro_Toledo", scale)
    pts = align.detect_landmarks(rgb)
    plan = align.plan_for_landmarks(pts, rgb.shape[:2])
    assert plan.levels == levels
    exact = align.apply_plan(rgb, plan)  # the exact path reads the same plan as dlib's chip
    np.testing.assert_array_equal(exact, align.face_chip(rgb, pts))
    ours = ChipWarp(plan)(_tensor(rgb))[0].permute(1, 2, 0).numpy() * 255
    diff = ours - exact.astype(np.float64)
    # dlib truncates to uint8 after sampling and after each pyramid level; the warp does not
    assert diff.min() > -0.01 and diff.max() < 1.0 + levels + 0.01


def test_pasted_chip_delta_reaches_the_chip() -> None:
    rgb = _photo("Alvaro_Uribe")
    plan = align.plan_for_landmarks(align.detect_landmarks(rgb), rgb.shape[:2])
    x = _tensor(rgb) * 0.5 + 0.25  # room for +-delta without clipping
    delta = torch.zeros(1, 3, 150, 150, dtype=torch.float64)
    delta[..., 40:110, 40:110] = 4 / 255
    moved = ChipWarp(plan)(paste_chip_delta(x, delta, plan)) - ChipWarp(plan)(x)
    assert moved[..., 50:100, 50:100].mul(255).sub(4).abs().max() < 1e-6
    assert moved[..., :30, :30].abs().max() < 1e-9


def test_photo_space_pgd_moves_the_embedding_through_the_warp() -> None:
    torch.manual_seed(0)
    rgb, victim = _photo("Alejandro_Toledo"), _photo("Alvaro_Uribe")
    plan = align.plan_for_landmarks(align.detect_landmarks(rgb), rgb.shape[:2])
    vplan = align.plan_for_landmarks(align.detect_landmarks(victim), victim.shape[:2])
    model = PooledPixels().double()
    x = _tensor(rgb)
    target = model(ChipWarp(vplan)(_tensor(victim))).detach()
    net = PhotoFaceModel(model, plan, PhotoOptions(eot_samples=2, jpeg=90))
    crit = Impersonation(target, threshold=0.5)
    before = float(crit.distance(model(ChipWarp(plan)(x))))
    res = full_budget(build_attack("pgd", "linf", steps=5))(net, x, crit,
                                                                 epsilons=[8 / 255])
    adv = res.clipped[0]
    assert (adv - x).abs().max() <= 8 / 255 + 1e-9
    assert float(crit.distance(model(ChipWarp(plan)(adv)))) < before
    with pytest.raises(ValueError, match="eot_samples"):
        PhotoOptions(eot_samples=0)
