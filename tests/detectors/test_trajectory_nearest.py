"""The trajectory detector's ``nearest = K`` option: the K smallest distances per layer,
sorted, so the detector does not depend on who is enrolled or in which order."""

from __future__ import annotations

import pytest
import torch

from facerobust.detectors.registry import build_detector
from facerobust.detectors.trajectory import TrajectoryDetector
from tests.detectors.conftest import IDENTITIES, Task


def _scores(task: Task, labels: torch.Tensor, nearest: int) -> torch.Tensor:
    det = build_detector("trajectory", task.model, nearest=nearest, epochs=3, hidden=8)
    det.enroll(task.gallery, labels)
    half = len(task.clean) // 2
    det.fit(task.clean[:half], task.adversarial[:half])
    return torch.as_tensor(det.score(task.clean[half:]))


def test_nearest_reads_k_sorted_distances_whoever_is_enrolled(task: Task) -> None:
    det = build_detector("trajectory", task.model, nearest=3)
    assert isinstance(det, TrajectoryDetector)
    det.enroll(task.gallery, task.gallery_labels)
    seq = det.sequence(det.features(task.clean[:4]))
    assert seq.shape[2] == det.width == 3 and det.label.endswith("nearest-3")
    assert bool((seq.diff(dim=2) >= 0).all())  # ascending per layer
    renamed = (task.gallery_labels + 2) % IDENTITIES  # the same people enrolled in another order
    assert torch.allclose(_scores(task, task.gallery_labels, 3), _scores(task, renamed, 3))
    assert not torch.allclose(_scores(task, task.gallery_labels, 0), _scores(task, renamed, 0))


@pytest.mark.parametrize("bad", [-1, True, 2.5])
def test_nearest_must_be_a_non_negative_integer(task: Task, bad: object) -> None:
    with pytest.raises(ValueError, match="nearest must be an integer >= 0"):
        TrajectoryDetector(task.model, nearest=bad)  # type: ignore[arg-type]
