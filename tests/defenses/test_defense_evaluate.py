from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from facerobust.attacks.pgd import PGD
from facerobust.defenses import parse_defense
from facerobust.eval.defense_eval import (
    DefenseEvalOptions,
    accuracy_at_threshold,
    evaluate_defense,
    evaluate_defense_identification,
)
from facerobust.eval.metrics import tar_at_far
from facerobust.eval.results import DefenseUnit

EPS = [2 / 255, 8 / 255]
DODGE = DefenseEvalOptions(epsilons=EPS, goal="dodging")


def rates(column: list) -> list[float]:
    return [r.rate for r in column]


@pytest.mark.parametrize("spec", ["jpeg:q=60", "bitdepth:bits=3"])
def test_adaptive_attack_does_at_least_as_well_as_naive(tiny, pairs, spec) -> None:
    x1, x2, same = pairs
    r = evaluate_defense(tiny, parse_defense(spec), x1, x2, same, PGD(steps=5), DODGE)
    assert r.n_attacked == int(same.sum()) and r.clean.rate == 1.0
    assert r.adaptive_mode == "bpda"
    assert all(a.k >= n.k for a, n in zip(r.adaptive, r.naive, strict=True))
    assert r.adaptive[-1].rate > 0.5 and r.adaptive[-1].n == r.n_attacked
    # autograd through the quantiser gives nothing: direct attack fails, masking is flagged
    assert r.direct is not None and r.direct[-1].k < r.adaptive[-1].k
    assert r.masking["zero_gradients"] and any("zero" in f for f in r.flags)
    assert all(w.k >= a.k for w, a in zip(r.worst_case, r.adaptive, strict=True))
    assert r.ms_per_image > 0 and r.epsilon_labels == ["2/255", "8/255"]


def test_undefended_baseline_and_json_round_trip(tiny, pairs) -> None:
    x1, x2, same = pairs
    r = evaluate_defense(tiny, parse_defense("none"), x1, x2, same, PGD(steps=5),
                         DefenseEvalOptions(epsilons=EPS, goal="dodging", direct=False))
    assert r.naive == r.undefended == r.adaptive
    assert r.direct is None and r.flags == []
    data = json.loads(json.dumps(r.to_dict()))
    assert data["name"] == "none" and data["naive"][0]["n"] == r.n_attacked
    assert set(data["naive"][0]) == {"k", "n", "rate", "ci95"}
    assert DefenseUnit.from_dict(data) == r


def test_randomised_defense_uses_eot_and_impersonation_goal(tiny, pairs) -> None:
    x1, x2, same = pairs
    tiny.threshold *= 3  # resize-and-pad moves embeddings: widen the accept region
    options = DefenseEvalOptions(epsilons=[8 / 255], goal="impersonation", eot_samples=2,
                                 direct=False, n_attack=3)
    r = evaluate_defense(tiny, parse_defense("rp:scale=0.1"), x1, x2, same, PGD(steps=3),
                         options)
    assert r.adaptive_mode == "bpda+eot2" and r.goal == "impersonation"
    assert r.n_attacked <= 3 and r.masking.get("random_outputs", True)


class Classifier(nn.Module):
    """Tiny embedder + linear head: logits over 4 classes."""

    def __init__(self, tiny: nn.Module) -> None:
        super().__init__()
        self.embedder = tiny
        torch.manual_seed(3)
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embedder(x))


def test_identification_goals_are_judged_too(tiny, pairs) -> None:
    x = pairs[0]
    clf = Classifier(tiny).eval()
    with torch.no_grad():
        labels = clf(x).argmax(1)  # every probe correctly identified when clean
    big = [8 / 255, 64 / 255]  # the random head has wide margins
    r = evaluate_defense_identification(clf, parse_defense("bitdepth:bits=4"), x, labels,
                                        PGD(steps=10),
                                        DefenseEvalOptions(epsilons=big, goal="untargeted"))
    assert r.clean_measure == "identification top-1" and r.clean_undefended.rate == 1.0
    assert r.tar_at_far is None and r.n_attacked == r.clean.k
    assert r.adaptive[-1].k >= r.naive[-1].k and r.adaptive[-1].rate > 0.5
    targets = (labels + 1) % 4
    targeted = DefenseEvalOptions(epsilons=big, goal="targeted", direct=False)
    t = evaluate_defense_identification(clf, parse_defense("none"), x, labels, PGD(steps=10),
                                        targeted, targets=targets)
    assert t.goal == "targeted" and t.undefended[-1].k >= t.undefended[0].k
    with pytest.raises(ValueError, match="needs one target label per probe"):
        evaluate_defense_identification(clf, parse_defense("none"), x, labels, PGD(),
                                        DefenseEvalOptions(epsilons=EPS, goal="targeted"))
    with pytest.raises(ValueError, match="goal must be 'untargeted' or 'targeted'"):
        evaluate_defense_identification(clf, parse_defense("none"), x, labels, PGD(), DODGE)


def test_metrics_helpers() -> None:
    d = torch.tensor([0.1, 0.2, 0.5, 0.3, 0.9, 1.0])
    same = torch.tensor([True, True, True, False, False, False])
    assert accuracy_at_threshold(d, same, 0.4).k == 4
    assert tar_at_far(d.numpy(), same.numpy(), 1e-3)[0] == pytest.approx(2 / 3)
    assert tar_at_far(d.numpy(), same.numpy(), 0.34)[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="need both same and different"):
        tar_at_far(d[:3].numpy(), same[:3].numpy(), 1e-3)


def test_evaluate_validation(tiny, pairs) -> None:
    x1, x2, same = pairs
    with pytest.raises(ValueError, match="goal must be 'dodging' or 'impersonation'"):
        evaluate_defense(tiny, parse_defense("none"), x1, x2, same, PGD(),
                         DefenseEvalOptions(epsilons=EPS, goal="untargeted"))
    with pytest.raises(ValueError, match="same must be a bool tensor"):
        evaluate_defense(tiny, parse_defense("none"), x1, x2, same.long(), PGD(), DODGE)
    with pytest.raises(ValueError, match="x1 and x2 must be equal"):
        evaluate_defense(tiny, parse_defense("none"), x1, x2[:3], same, PGD(), DODGE)
    with pytest.raises(TypeError, match="defense must be a Defense"):
        evaluate_defense(tiny, "jpeg", x1, x2, same, PGD(), DODGE)  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "message"), [
    ({"goal": "dodge"}, "goal must be one of dodging, impersonation"),
    ({"epsilons": []}, "epsilons is empty"),
    ({"epsilons": [-1.0]}, "epsilons must be >= 0"),
    ({"n_attack": 0}, "n_attack must be an integer >= 1"),
    ({"eot_samples": 0}, "eot_samples must be an integer >= 1"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"far": 0.0}, r"far must be in \(0, 1\)"),
    ({"seed": 1.5}, "seed must be an integer"),
])
def test_options_name_the_bad_field(changes: dict, message: str) -> None:
    settings = {"epsilons": EPS, "goal": "dodging", **changes}
    with pytest.raises(ValueError, match=message):
        DefenseEvalOptions(**settings)
    assert DODGE.epsilons == tuple(EPS)


def test_pair_embeddings_reuse_bare_descriptors_and_embed_each_chip_once() -> None:
    from facerobust.core.embedding import embed
    from facerobust.defenses import parse_defense
    from facerobust.eval.defense_eval import DefenseEvalOptions, pair_embeddings, plan_verification
    from tests.helpers.models import PooledPixels

    torch.manual_seed(0)
    model, chips = PooledPixels(), torch.rand(6, 3, 150, 150)
    a, b = torch.tensor([0, 1, 2, 0]), torch.tensor([3, 4, 5, 5])
    same = torch.tensor([True, False, True, False])
    options = DefenseEvalOptions(epsilons=(4 / 255,), goal="dodging", batch_size=2)
    calls: list[int] = []
    jpeg = parse_defense("jpeg:q=75")
    real = jpeg.forward

    def counting(x: torch.Tensor) -> torch.Tensor:
        calls.append(len(x))
        return real(x)

    jpeg.forward = counting  # type: ignore[method-assign]
    shared = pair_embeddings(model, jpeg, chips, (a, b), options, bare_all=embed(model, chips))
    assert sum(calls) == 6  # 8 pair chips, 6 distinct
    alone = plan_verification(model, jpeg, chips[a], chips[b], same, options)
    reused = plan_verification(model, jpeg, chips[a], chips[b], same, options,
                               embeddings=shared)
    assert alone.clean == reused.clean and torch.equal(alone.idx, reused.idx)
    assert torch.allclose(alone.ref_defended, reused.ref_defended, atol=1e-5)
