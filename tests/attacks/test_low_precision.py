"""Attacks under a bfloat16 autocast: gradients in bfloat16, but the verdicts that decide what
an attack keeps or where it stops are float32 forwards (CW, early-stopping PGD, the minimal
search)."""

from __future__ import annotations

import math

import torch

from facerobust.attacks import PGD, CarliniWagnerL2, Dodging, minimal_epsilon

from .conftest import TinyFace


def _bf16() -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16)


def test_cw_in_bf16_keeps_only_adversarials_a_float32_forward_accepts(
        face_pairs: tuple[TinyFace, torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
    model, x, own, _ = face_pairs
    crit = Dodging.for_model(model, own)
    cw = CarliniWagnerL2(binary_search_steps=3, steps=30, initial_const=1.0)
    assert cw.float32_verdicts
    with _bf16():
        res = cw(model, x, crit, epsilons=[math.inf])
    claimed = res.success[0]
    with torch.no_grad():
        fp32 = crit.is_adversarial(model(res.clipped[0]))
        with _bf16():
            bf16 = crit.is_adversarial(model(res.clipped[0]))
    assert claimed.sum() >= len(x) // 2
    assert torch.equal(fp32, claimed)  # every claimed success holds in float32
    # CW stops on the decision boundary, where a bfloat16 verdict is unreliable: the same
    # images judged in bfloat16 disagree with float32 (what the float32 check guards against)
    assert not torch.equal(bf16, fp32)
    assert res.passes > 0


def test_cw_in_bf16_finds_about_what_float32_finds(
        face_pairs: tuple[TinyFace, torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
    model, x, own, _ = face_pairs
    crit = Dodging.for_model(model, own)
    cw = CarliniWagnerL2(binary_search_steps=3, steps=30, initial_const=1.0)
    res32 = cw(model, x, crit, epsilons=[math.inf])
    with _bf16():
        res16 = cw(model, x, crit, epsilons=[math.inf])
    assert abs(int(res16.success.sum()) - int(res32.success.sum())) <= 1
    l2_32 = (res32.clipped[0] - x).flatten(1).norm(dim=1)[res32.success[0]].median()
    l2_16 = (res16.clipped[0] - x).flatten(1).norm(dim=1)[res16.success[0]].median()
    assert float(l2_16) <= 1.25 * float(l2_32)


def test_early_stopping_pgd_in_bf16_reports_float32_verdicts(
        face_pairs: tuple[TinyFace, torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
    model, x, own, _ = face_pairs
    crit = Dodging.for_model(model, own)
    pgd = PGD("linf", steps=10, random_start=False)
    assert pgd.float32_verdicts
    with _bf16():
        res = pgd(model, x, crit, epsilons=[2 / 255, 4 / 255, 8 / 255])
    with torch.no_grad():
        for adv, ok in zip(res.clipped, res.success, strict=True):
            assert torch.equal(crit.is_adversarial(model(adv)), ok)  # both ways, in float32
    assert int(res.success[-1].sum()) > 0


def test_minimal_search_in_bf16_keeps_float32_adversarials_within_their_budgets(
        face_pairs: tuple[TinyFace, torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
    model, x, own, _ = face_pairs
    crit = Dodging.for_model(model, own)
    pgd = PGD("linf", steps=10)
    res32 = minimal_epsilon(model, x, crit, attack=pgd, max_epsilon=16 / 255,
                            generator=torch.Generator().manual_seed(0))
    with _bf16():
        res16 = minimal_epsilon(model, x, crit, attack=pgd, max_epsilon=16 / 255,
                                generator=torch.Generator().manual_seed(0))
    found = torch.isfinite(res16.epsilons)
    assert int(found.sum()) >= len(x) // 2
    with torch.no_grad():
        ok = crit.is_adversarial(model(res16.adversarials))
    assert ok[found].all()  # every reported budget has a float32 adversarial ...
    size = (res16.adversarials - x).flatten(1).abs().amax(1)
    assert (size[found] <= res16.epsilons[found] + 1e-6).all()  # ... within it
    assert abs(int(found.sum()) - int(torch.isfinite(res32.epsilons).sum())) <= 1
    assert res16.median() <= 1.25 * res32.median()
