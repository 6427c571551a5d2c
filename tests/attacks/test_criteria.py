from __future__ import annotations

import pytest
import torch

from facerobust.attacks import (
    Dodging,
    Impersonation,
    Misclassification,
    TargetedMisclassification,
)


def test_verification_criteria_follow_threshold() -> None:
    ref = torch.zeros(3, 4)
    out = torch.tensor([[0.1, 0, 0, 0], [0.6, 0, 0, 0], [2.0, 0, 0, 0]])
    dodge = Dodging(ref, threshold=0.6, metric="euclidean")
    imp = Impersonation(ref, threshold=0.6, metric="euclidean")
    assert dodge.is_adversarial(out).tolist() == [False, False, True]
    assert imp.is_adversarial(out).tolist() == [True, True, False]
    # margin > 0 exactly where adversarial
    assert ((dodge.margin(out) > 0) == dodge.is_adversarial(out)).all()
    assert ((imp.margin(out) > 0) == imp.is_adversarial(out)).all()
    # loss increases towards the goal
    assert dodge.loss(out)[2] > dodge.loss(out)[0]
    assert imp.loss(out)[0] > imp.loss(out)[2]


def test_cosine_metric_and_for_model() -> None:
    class M(torch.nn.Module):
        metric = "cosine"
        threshold = 0.4

    ref = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    crit = Impersonation.for_model(M(), ref)
    assert crit.metric == "cosine" and crit.threshold == 0.4
    out = torch.tensor([[2.0, 0.1], [0.0, 1.0]])
    assert crit.is_adversarial(out).tolist() == [True, False]
    assert torch.equal(Impersonation(target=ref, threshold=0.4).target, ref)
    with pytest.raises(ValueError, match="needs a FaceModel"):
        Dodging.for_model(torch.nn.Linear(2, 2), ref)


def test_classification_criteria() -> None:
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 5.0]])
    mis = Misclassification(torch.tensor([0, 1]))
    tgt = TargetedMisclassification(torch.tensor([1, 2]))
    assert mis.is_adversarial(logits).tolist() == [False, True]
    assert tgt.is_adversarial(logits).tolist() == [False, True]
    assert ((mis.margin(logits) > 0) == mis.is_adversarial(logits)).all()
    assert ((tgt.margin(logits) > 0) == tgt.is_adversarial(logits)).all()
    assert mis.subset(torch.tensor([1])).labels.tolist() == [1]


def test_check_rejects_misfits() -> None:
    with pytest.raises(ValueError, match="4-d but the model outputs 5-d"):
        Dodging(torch.zeros(2, 4), 0.6).check(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="holds 2 descriptors but the batch has 3"):
        Dodging(torch.zeros(2, 4), 0.6).check(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="label 7 does not fit a model with 3 classes"):
        Misclassification(torch.tensor([7, 0])).check(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="labels must be a 1-D integer tensor"):
        Misclassification(torch.zeros(2))
    with pytest.raises(ValueError, match="threshold must be > 0"):
        Dodging(torch.zeros(2, 4), -1.0)
    with pytest.raises(ValueError, match="metric must be"):
        Dodging(torch.zeros(2, 4), 0.6, metric="manhattan")  # type: ignore[arg-type]


def test_per_row_thresholds_judge_each_row_and_follow_subsets() -> None:
    ref = torch.zeros(3, 4)
    out = torch.tensor([[0.5, 0, 0, 0], [0.5, 0, 0, 0], [0.5, 0, 0, 0]])  # distance 0.5 each
    thr = torch.tensor([0.4, 0.5, 0.6], dtype=torch.float64)
    dodge = Dodging(ref, threshold=thr, metric="euclidean")
    imp = Impersonation(ref, threshold=thr, metric="euclidean")
    assert dodge.is_adversarial(out).tolist() == [True, False, False]
    assert imp.is_adversarial(out).tolist() == [False, True, True]
    assert ((imp.margin(out) > 0) == imp.is_adversarial(out)).all()
    assert ((dodge.margin(out) > 0) == dodge.is_adversarial(out)).all()
    # each row keeps its own threshold in a subset
    sub = dodge.subset(torch.tensor([2, 0]))
    assert sub.is_adversarial(out[[2, 0]]).tolist() == [False, True]
    assert dodge.describe()["threshold"] == thr.tolist()
    # one scalar threshold behaves as before
    assert Dodging(ref, 0.45).is_adversarial(out).tolist() == [True, True, True]


def test_per_row_thresholds_are_checked() -> None:
    with pytest.raises(ValueError, match=r"one per row needs shape \(2,\), got \(3,\)"):
        Dodging(torch.zeros(2, 4), torch.tensor([0.5, 0.5, 0.5]))
    with pytest.raises(ValueError, match="threshold must be > 0 in every row"):
        Impersonation(torch.zeros(2, 4), torch.tensor([0.5, 0.0]))
