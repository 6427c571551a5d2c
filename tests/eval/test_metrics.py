from __future__ import annotations

import numpy as np
import pytest

from facerobust.eval.metrics import (
    best_threshold,
    identification_top1,
    roc_points,
    verification_metrics,
)


def lfw_like(rng: np.random.Generator, gap: float, n_per: int = 30, folds: int = 10):
    same = np.tile(np.r_[np.ones(n_per, bool), np.zeros(n_per, bool)], folds)
    fold = np.repeat(np.arange(folds), 2 * n_per)
    d = np.where(same, rng.normal(0.4, 0.1, same.size), rng.normal(0.4 + gap, 0.1, same.size))
    return d, same, fold


def test_perfectly_separable() -> None:
    d, same, fold = lfw_like(np.random.default_rng(0), gap=0.0)
    d = np.where(same, np.linspace(0.1, 0.4, d.size), np.linspace(0.6, 1.0, d.size))
    m = verification_metrics(d, same, fold)
    assert m.protocol == "k-fold" and m.n_folds == 10
    assert m.accuracy == 1.0 and m.accuracy_std == 0.0
    assert m.auc == 1.0 and m.eer == 0.0 and m.tar_at_far == 1.0
    assert 0.4 <= m.best_threshold < 0.6 and m.best_accuracy == 1.0
    assert d[same].max() <= m.threshold_at_far < d[~same].min()
    assert (m.n_pairs, m.n_same, m.n_diff) == (600, 300, 300)


def test_random_scores_are_at_chance() -> None:
    rng = np.random.default_rng(1)
    same = rng.random(4000) < 0.5
    d = rng.random(4000)
    m = verification_metrics(d, same, rng.integers(0, 10, 4000))
    assert abs(m.auc - 0.5) < 0.03
    assert abs(m.eer - 0.5) < 0.03
    assert 0.45 < m.accuracy < 0.56
    assert m.tar_at_far < 0.01


def test_gaussian_overlap_matches_theory() -> None:
    """Equal-variance Gaussians 2 sigma apart: EER = Phi(-1) = 0.1587, AUC = Phi(sqrt 2)."""
    from math import erf, sqrt

    d, same, fold = lfw_like(np.random.default_rng(2), gap=0.2, n_per=1500)
    m = verification_metrics(d, same, fold)
    phi = lambda x: 0.5 * (1 + erf(x / sqrt(2)))  # noqa: E731
    assert m.eer == pytest.approx(phi(-1.0), abs=0.01)
    assert m.auc == pytest.approx(phi(sqrt(2.0)), abs=0.01)
    assert m.accuracy == pytest.approx(1 - phi(-1.0), abs=0.01)
    assert m.eer_threshold == pytest.approx(0.5, abs=0.01)
    assert m.best_threshold == pytest.approx(0.5, abs=0.02)
    # TAR@FAR: the FAR actually achieved at the reported threshold stays <= far
    achieved_far = (d[~same] <= m.threshold_at_far).mean()
    assert achieved_far <= m.far
    assert m.tar_at_far == pytest.approx((d[same] <= m.threshold_at_far).mean())


def test_fold_thresholds_come_from_other_folds() -> None:
    """Fold 0's own optimum differs from the others': its accuracy reflects the others'."""
    same = np.r_[True, False, True, False, True, False]
    d = np.r_[0.5, 0.6, 0.1, 0.2, 0.1, 0.2]  # folds 1,2 split at 0.15; fold 0 needs 0.55
    fold = np.r_[0, 0, 1, 1, 2, 2]
    m = verification_metrics(d, same, fold)
    assert m.accuracy == pytest.approx((0.5 + 1 + 1) / 3)
    assert m.best_accuracy == pytest.approx(5 / 6)


def test_single_fold_falls_back_to_best_threshold() -> None:
    m = verification_metrics([0.1, 0.9, 0.2, 0.8], [1, 0, 1, 0], [0, 0, 0, 0])
    assert m.protocol == "best-threshold" and m.accuracy == 1.0 and m.n_folds == 1


def test_best_threshold_with_ties() -> None:
    thr, acc = best_threshold(np.r_[0.5, 0.5, 0.5, 0.9], np.r_[True, True, False, False])
    assert acc == 0.75 and thr == pytest.approx(0.7)


@pytest.mark.parametrize(("args", "match"), [
    (([0.1, 0.2], [True, True], [0, 1]), "both same and different"),
    (([0.1, 0.2], [True], [0, 1]), "differ in length"),
    (([0.1, np.nan], [True, False], [0, 1]), "NaN"),
    (([0.1, 0.2], [2, 0], [0, 1]), "boolean"),
    (([0.1, 0.2], [True, False], [0]), "folds and distances differ"),
])
def test_validation(args, match) -> None:
    with pytest.raises(ValueError, match=match):
        verification_metrics(*args)
    with pytest.raises(ValueError, match="far must lie"):
        verification_metrics([0.1, 0.2], [True, False], [0, 1], far=0)


def test_roc_points() -> None:
    d, same, _ = lfw_like(np.random.default_rng(3), gap=0.2)
    roc = roc_points(d, same)
    assert roc.far[0] == 0.0 and roc.tar[0] == 0.0 and roc.thresholds[0] is None
    assert roc.far[-1] == 1.0 and roc.tar[-1] == 1.0
    assert np.all(np.diff(roc.far) >= 0) and np.all(np.diff(roc.tar) >= 0)
    t = roc.thresholds[len(roc.far) // 2]
    k = len(roc.far) // 2
    assert roc.far[k] == pytest.approx((d[~same] <= t).mean())
    small = roc_points(d, same, max_points=50)
    assert len(small.far) <= 50 and small.to_dict()["far"][0] == 0.0


def test_identification_top1() -> None:
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(20, 16)) * 5
    g_lab = np.repeat(np.arange(20), 3)
    p_lab = np.repeat(np.arange(20), 2)
    g = centres[g_lab] + rng.normal(size=(60, 16)) * 0.1
    p = centres[p_lab] + rng.normal(size=(40, 16)) * 0.1
    for metric in ("euclidean", "cosine"):
        for rule in ("nearest-neighbour", "class-mean"):
            assert identification_top1(g, g_lab, p, p_lab, metric, rule=rule) == 1.0
    wrong = (p_lab + 1) % 20  # every probe labelled as another gallery class
    assert identification_top1(g, g_lab, p, wrong, "euclidean") == 0.0
    noise = rng.normal(size=(40, 16))
    assert identification_top1(g, g_lab, noise, p_lab, "cosine") < 0.3
    with pytest.raises(ValueError, match="no gallery image"):
        identification_top1(g, g_lab, p, p_lab + 100, "cosine")
    with pytest.raises(ValueError, match="metric must be"):
        identification_top1(g, g_lab, p, p_lab, "manhattan")
    with pytest.raises(ValueError, match="rule must be"):
        identification_top1(g, g_lab, p, p_lab, "cosine", rule="knn")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="equal widths"):
        identification_top1(g, g_lab, p[:, :3], p_lab, "cosine")


def test_class_mean_differs_from_nearest_neighbour() -> None:
    """One gallery outlier of class 1 lies next to the probe; the class mean ignores it."""
    g = np.array([[0.0, 0.0], [0.2, 0.0], [10.0, 0.0], [10.2, 0.0], [1.0, 0.0]])
    gl = np.array([0, 0, 1, 1, 1])
    p, pl = np.array([[0.9, 0.0]]), np.array([0])
    assert identification_top1(g, gl, p, pl, "euclidean", rule="nearest-neighbour") == 0.0
    assert identification_top1(g, gl, p, pl, "euclidean", rule="class-mean") == 1.0
