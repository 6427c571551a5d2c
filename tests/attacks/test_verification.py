from __future__ import annotations

import pytest
import torch

from facerobust.attacks import FGSM, MIFGSM, PGD, CarliniWagnerL2, Dodging, Impersonation


@pytest.mark.parametrize("attack", [FGSM(), PGD(steps=5), PGD("l2", steps=5),
                                    MIFGSM(steps=5)], ids=repr)
def test_dodging_raises_distance_and_impersonation_lowers_it(
    attack, face_pairs: tuple
) -> None:
    face_model, x, own, victims = face_pairs
    eps = [4 / 255] if attack.norm == "linf" else [0.5]
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        clean = face_model(x)
    dodge = Dodging.for_model(face_model, own)
    imp = Impersonation.for_model(face_model, victims)
    d_res = attack(face_model, x, dodge, epsilons=eps, generator=g)
    i_res = attack(face_model, x, imp, epsilons=eps, generator=g)
    with torch.no_grad():
        d_after = dodge.distance(face_model(d_res.clipped[0]))
        i_after = imp.distance(face_model(i_res.clipped[0]))
    assert (d_after >= dodge.distance(clean) - 1e-6).float().mean() >= 0.9
    assert d_after.mean() > dodge.distance(clean).mean()
    assert i_after.mean() < imp.distance(clean).mean()
    # reported success is the criterion on the returned adversarials
    assert torch.equal(d_res.success[0], d_after > dodge.threshold)
    assert torch.equal(i_res.success[0], i_after <= imp.threshold)


def test_cw_impersonation_succeeds_with_small_l2(
    face_pairs: tuple,
) -> None:
    face_model, x, _, victims = face_pairs
    crit = Impersonation.for_model(face_model, victims)
    res = CarliniWagnerL2(binary_search_steps=3, steps=40, lr=0.01, initial_const=1.0)(
        face_model, x, crit, epsilons=[float("inf")])
    ok = res.success[0]
    assert ok.float().mean() >= 0.5
    with torch.no_grad():
        assert (crit.distance(face_model(res.clipped[0]))[ok] <= crit.threshold).all()
