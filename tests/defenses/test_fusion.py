"""Score-level fusion of verification models as a defense: adaptive vs single-member chips."""

from __future__ import annotations

import pytest
import torch

from facerobust.attacks import PGD, Dodging
from facerobust.attacks.ensemble import FusedCriterion
from facerobust.eval.fusion_eval import FusionOptions, evaluate_fusion


def _members(make_tiny, pairs):  # noqa: ANN001, ANN202
    x1, x2, same = pairs
    members = {}
    for seed in (0, 1):
        m = make_tiny(seed=seed).eval()
        with torch.no_grad():
            d = m.distance(m(x1), m(x2))
        m.threshold = float((d[same].max() + d[~same].min()) / 2)
        members[f"tiny{seed}"] = m
    return members


def test_fused_score_is_the_mean_normalised_distance(make_tiny, pairs) -> None:
    members = _members(make_tiny, pairs)
    x1, x2, _ = pairs
    a, b = members.values()
    with torch.no_grad():
        refs = [a(x2), b(x2)]
        out = torch.cat([a(x1), b(x1)], dim=1)
    crit = FusedCriterion([Dodging.for_model(a, refs[0]), Dodging.for_model(b, refs[1])],
                          [16, 16])
    expected = (a.distance(out[:, :16], refs[0]) / a.threshold
                + b.distance(out[:, 16:], refs[1]) / b.threshold) / 2
    assert torch.allclose(crit.score(out), expected, atol=1e-5)
    assert torch.equal(crit.is_adversarial(out), expected > 1)
    with pytest.raises(ValueError, match="verification criteria of one kind"):
        FusedCriterion([Dodging.for_model(a, refs[0])], [16])


def test_adaptive_attack_on_the_fusion_beats_transfer_from_a_member(make_tiny, pairs) -> None:
    members = _members(make_tiny, pairs)
    x1, x2, same = pairs
    eps = [4 / 255, 16 / 255]
    unit = evaluate_fusion(members, x1, x2, same, PGD(steps=10),
                           FusionOptions(epsilons=eps, n_attack=8, batch_size=8))
    assert unit.clean.n == len(x1) and set(unit.clean_members) == set(members)
    assert unit.n_attacked > 0 and all(r.n == unit.n_attacked for r in unit.adaptive)
    assert unit.adaptive[-1].k >= unit.adaptive[0].k and unit.adaptive[-1].rate > 0.5
    for name in members:  # chips fool their own member at least as often as the fusion
        assert unit.member_whitebox[name][-1].k >= unit.from_member[name][-1].k
    best_transfer = max(col[-1].k for col in unit.from_member.values())
    assert unit.adaptive[-1].k >= best_transfer
    with pytest.raises(ValueError, match="fusion needs >= 2 models"):
        evaluate_fusion({"one": members["tiny0"]}, x1, x2, same, PGD(), FusionOptions(eps))
    with pytest.raises(ValueError, match="goal must be 'dodging' or 'impersonation'"):
        FusionOptions(eps, goal="untargeted")
    with pytest.raises(ValueError, match="n_attack must be an integer >= 1"):
        FusionOptions(eps, n_attack=0)
    with pytest.raises(ValueError, match="epsilons must be a non-empty list"):
        FusionOptions(())
