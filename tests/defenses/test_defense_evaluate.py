from __future__ import annotations

import json

import pytest
import torch

from facerobust.attacks.pgd import PGD
from facerobust.defenses import parse_defense
from facerobust.defenses.evaluate import (
    DefenseResult,
    accuracy_at_threshold,
    evaluate_defense,
    tar_at_far,
)

EPS = [2 / 255, 8 / 255]


@pytest.mark.parametrize("spec", ["jpeg:q=60", "bitdepth:bits=3"])
def test_adaptive_attack_does_at_least_as_well_as_naive(tiny, pairs, spec) -> None:
    x1, x2, same = pairs
    r = evaluate_defense(tiny, parse_defense(spec), x1, x2, same, attack=PGD(steps=5),
                         epsilons=EPS)
    assert r.n_attacked == int(same.sum()) and r.clean_accuracy == 1.0
    assert r.adaptive_mode == "bpda"
    assert all(r.adaptive[e] >= r.naive[e] for e in EPS)
    assert r.adaptive[EPS[-1]] > 0.5
    # autograd through the quantiser gives nothing: direct attack fails, masking is flagged
    assert r.direct is not None and r.direct[EPS[-1]] < r.adaptive[EPS[-1]]
    assert r.masking["zero_gradients"] and r.masking["any"]
    assert all(r.worst_case[e] >= r.adaptive[e] for e in EPS)
    assert r.ms_per_image > 0


def test_undefended_baseline_and_json_round_trip(tiny, pairs) -> None:
    x1, x2, same = pairs
    r = evaluate_defense(tiny, parse_defense("none"), x1, x2, same, attack=PGD(steps=5),
                         epsilons=EPS, direct=False)
    assert r.naive == r.undefended == r.adaptive
    assert not r.masking["zero_gradients"] and not r.masking["random_outputs"]
    data = json.loads(r.to_json())
    assert data["name"] == "none" and set(data["naive"]) == {repr(e) for e in EPS}
    assert DefenseResult.from_dict(data) == r


def test_randomised_defense_uses_eot_and_impersonation_goal(tiny, pairs) -> None:
    x1, x2, same = pairs
    tiny.threshold *= 3  # resize-and-pad moves embeddings: widen the accept region
    r = evaluate_defense(tiny, parse_defense("rp:scale=0.1"), x1, x2, same,
                         attack=PGD(steps=3), epsilons=[8 / 255], goal="impersonation",
                         eot_samples=2, direct=False, n_attack=3)
    assert r.adaptive_mode == "bpda+eot2" and r.goal == "impersonation"
    assert r.n_attacked <= 3 and r.masking.get("random_outputs", True)


def test_metrics_helpers() -> None:
    d = torch.tensor([0.1, 0.2, 0.5, 0.3, 0.9, 1.0])
    same = torch.tensor([True, True, True, False, False, False])
    assert accuracy_at_threshold(d, same, 0.4) == pytest.approx(4 / 6)
    assert tar_at_far(d, same, 1e-3) == pytest.approx(2 / 3)   # accept below 0.3
    assert tar_at_far(d, same, 0.34) == pytest.approx(1.0)     # one impostor allowed
    with pytest.raises(ValueError, match="both genuine and impostor"):
        tar_at_far(d[:3], same[:3], 1e-3)


def test_evaluate_validation(tiny, pairs) -> None:
    x1, x2, same = pairs
    with pytest.raises(ValueError, match="goal must be"):
        evaluate_defense(tiny, parse_defense("none"), x1, x2, same, attack=PGD(),
                         epsilons=EPS, goal="dodge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same must be a bool tensor"):
        evaluate_defense(tiny, parse_defense("none"), x1, x2, same.long(), attack=PGD(),
                         epsilons=EPS)
    with pytest.raises(ValueError, match="x1 and x2 must be equal"):
        evaluate_defense(tiny, parse_defense("none"), x1, x2[:3], same, attack=PGD(),
                         epsilons=EPS)
