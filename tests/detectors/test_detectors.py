"""Each detector on a tiny identification task: separation, exactness, thresholds, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facerobust.detectors import build_detector, load_detector, save_detector, threshold_at_fpr
from facerobust.detectors.metrics import auroc, auroc_interval, macro_auc
from facerobust.detectors.squeeze import median_filter, reduce_bit_depth
from tests.detectors.conftest import Task
from tests.helpers.models import TinyResNet


def _fitted(name: str, task: Task, **options: object):  # type: ignore[no-untyped-def]
    det = build_detector(name, task.model, **options)
    det.enroll_features(det.features(task.gallery), task.gallery_labels)
    if det.supervised:
        det.fit(task.clean[::2], task.adversarial[::2])
    else:
        det.fit_features(det.features(task.gallery))
    det.calibrate(task.clean[::2], fpr=0.2)
    return det


@pytest.mark.parametrize("name,least", [("squeeze", 0.8), ("iforest", 0.7), ("gallery", 0.9),
                                        ("trajectory", 0.6)])
def test_detector_scores_held_out_adversarials_higher_than_clean(task: Task, name: str,
                                                                 least: float) -> None:
    options = {"epochs": 20} if name == "trajectory" else {}
    det = _fitted(name, task, **options)
    clean, adv = det.score(task.clean[1::2]), det.score(task.adversarial[1::2])
    assert auroc(clean, adv) >= least
    flagged = det.detect(task.adversarial[1::2])
    assert flagged.dtype == bool and flagged.mean() > det.detect(task.clean[1::2]).mean()


def test_ocsvm_torch_score_equals_scikit_learn(task: Task) -> None:
    det = _fitted("ocsvm", task)
    feats = det.features(torch.cat([task.clean, task.adversarial]))
    np.testing.assert_allclose(det.score_features(feats), det.sklearn_scores(feats),
                               rtol=1e-4, atol=1e-5)


def test_threshold_keeps_false_positive_rate_at_most_the_target() -> None:
    scores = np.arange(100, dtype=float)
    for fpr in (0.01, 0.05, 0.2):
        t = threshold_at_fpr(scores, fpr)
        assert (scores > t).mean() <= fpr
        assert (scores > t - 1).mean() > fpr  # the smallest such threshold
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        threshold_at_fpr(scores, 1.5)


def test_unfitted_detector_and_missing_threshold_are_clear_errors(task: Task) -> None:
    det = build_detector("squeeze", task.model)
    with pytest.raises(ValueError, match="not fitted"):
        det.score(task.clean[:2])
    det.fit(task.clean[:4])
    with pytest.raises(ValueError, match="no threshold"):
        det.detect(task.clean[:2])
    with pytest.raises(ValueError, match="supervised"):
        build_detector("trajectory", task.model).enroll(task.gallery, task.gallery_labels) \
            .fit(task.clean[:4])


def test_unknown_detector_or_option_names_it(task: Task) -> None:
    with pytest.raises(ValueError, match="unknown detector 'lstm'"):
        build_detector("lstm", task.model)
    with pytest.raises(ValueError, match="unknown option.*colour.*squeeze"):
        build_detector("squeeze", task.model, colour=3)
    with pytest.raises(ValueError, match="bits must lie in 1..7"):
        build_detector("squeeze", task.model, bits=9)


def test_saved_detector_reloads_with_identical_scores_and_refuses_another_model(
        task: Task, tmp_path: Path) -> None:
    for name in ("trajectory", "iforest", "gallery", "squeeze", "ocsvm"):
        det = _fitted(name, task, **({"epochs": 3} if name == "trajectory" else {}))
        path = save_detector(det, tmp_path / f"{name}.pt", model_name="tiny")
        again = load_detector(path, task.model.embedder, model_name="tiny")
        np.testing.assert_allclose(again.score(task.adversarial[:6]),
                                   det.score(task.adversarial[:6]), rtol=1e-5, atol=1e-6)
        assert again.threshold == det.threshold
    with pytest.raises(ValueError, match="fitted on model 'tiny'"):
        load_detector(path, TinyResNet(seed=7), model_name="tiny")
    with pytest.raises(ValueError, match="fitted on model 'tiny'.*not on 'other'"):
        load_detector(path, task.model.embedder, model_name="other")
    (tmp_path / "junk.pt").write_bytes(b"not a detector")
    with pytest.raises(ValueError, match="junk.pt: not a facerobust detector file"):
        load_detector(tmp_path / "junk.pt", task.model.embedder, model_name="tiny")


def test_squeezers_behave() -> None:
    flat = torch.full((1, 3, 20, 20), 0.3)
    assert torch.equal(median_filter(flat, 3), flat)
    noisy = flat.clone()
    noisy[0, :, 10, 10] = 1.0  # one hot pixel is removed by a 3x3 median
    assert torch.allclose(median_filter(noisy, 3), flat)
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    levels = reduce_bit_depth(x, 2)
    assert set(torch.unique(levels * 3).round().tolist()) <= {0.0, 1.0, 2.0, 3.0}
    reduce_bit_depth(x, 2, straight_through=True).sum().backward()
    assert x.grad is not None and torch.all(x.grad == 1)  # BPDA: identity gradient


def test_auroc_interval_and_macro_auc() -> None:
    low, high = auroc_interval(0.9, 50, 50)
    assert 0.8 < low < 0.9 < high < 1.0
    clean = np.zeros(10)
    adv = np.r_[np.ones(5), -np.ones(5)]
    groups = np.array(["a"] * 5 + ["b"] * 5)
    assert macro_auc(clean, adv, groups) == pytest.approx(0.5)
