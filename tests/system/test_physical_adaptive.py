"""Accessories against a face system with an adversarial-input detector (issue 27): a
flagged capture is never a success, and the adaptive accessory (optimised to keep the
detector's score under its threshold) gets past a detector that catches the naive one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from facerobust.data.capture import Capture
from facerobust.detectors.base import Detector
from facerobust.detectors.registry import DetectorScorer
from facerobust.system import FaceSystem
from facerobust.system import capture_variation as cv
from facerobust.system.physical import (
    PhysicalOptions,
    captured_bytes,
    control_texture,
    decide,
    heldout_captures,
    judge,
    optimise,
    shot_of,
    wear,
)
from tests.helpers import gate as g
from tests.helpers.models import PooledPixels

ATTACKER = "Alejandro_Toledo"


class Contrast(Detector):
    """Standard deviation of the chip's gray levels: a dodging print for a model of pooled
    gray levels needs strong dark and bright blocks, a face (or a random print) does not."""

    name = "contrast"

    def features_batch(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1).flatten(1).std(dim=1)[:, None]

    def score_batch(self, features: Any) -> torch.Tensor:
        return features[:, 0]

    def fit_features(self, clean: Any, adversarial: Any = None, **kwargs: Any) -> Detector:
        self.fitted = True
        return self

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        self.fitted = True


@pytest.fixture(scope="module")
def guarded() -> tuple[FaceSystem, np.ndarray]:
    """PooledPixels behind a contrast detector calibrated on the attacker's clean
    held-out captures (no false alarm on them); returns the system and the attacker's
    template."""
    torch.set_num_threads(1)
    model = PooledPixels()
    plain = FaceSystem(model, threshold=4.0, capture=Capture("hog"))
    shots = [shot_of(plain, g.demo_photo(ATTACKER, i), f"p{i}") for i in (2, 4)]
    bare = torch.zeros(1, 1, 150, 150)  # nothing worn: the clean captures
    clean = [plain.probe(captured_bytes(wear(s, bare.expand(1, 3, -1, -1), bare, d),
                                        d.jpeg)).chip
             for s in shots for d in cv.draws(cv.CaptureVariation(), 8, 0, "heldout")]
    detector = Contrast(model).fit(torch.cat(clean))
    detector.calibrate_scores(detector.score(torch.cat(clean)) * 1.05, fpr=0.01)
    system = FaceSystem(model, threshold=4.0, capture=Capture("hog"),
                        scorers={"sharp": DetectorScorer(detector)})
    return system, system.probe(g.demo_photo(ATTACKER, 1)).embedding[None]


def test_a_flagged_capture_is_no_dodging_success(guarded: tuple[FaceSystem, np.ndarray]
                                                 ) -> None:
    system, own = guarded
    scorer = system.scorers["sharp"]
    assert isinstance(scorer, DetectorScorer)
    opts = PhysicalOptions(accessory="mask", goal="dodging")
    shots = [shot_of(system, g.demo_photo(ATTACKER, 2), "p2")]
    captures = heldout_captures(shots, control_texture(opts), opts,
                                cv.draws(opts.variation, 2, 0, "heldout"))
    saved = scorer.threshold
    try:
        scorer.threshold = -1.0  # flags everything: every capture is rejected, and caught
        caught = decide(system, captures, own, "dodging")
    finally:
        scorer.threshold = saved
    assert caught.flagged == 2 and caught.success.k == 0


def test_adaptive_accessory_evades_the_detector_that_catches_the_naive_one(
        guarded: tuple[FaceSystem, np.ndarray]) -> None:
    system, own = guarded
    shots = [shot_of(system, g.demo_photo(ATTACKER, i), f"p{i}") for i in (2, 4)]
    base = PhysicalOptions(accessory="mask", goal="dodging", steps=30, eot_samples=2, lr=0.5,
                           smoothness=0.0, printability=0.1)
    held = cv.draws(base.variation, 3, 0, "heldout")
    control = judge(system, shots, control_texture(base), own, base, held)
    naive_tex, _ = optimise(system, shots, torch.from_numpy(own), base)
    naive = judge(system, shots, naive_tex, own, base, held)
    adaptive_opts = PhysicalOptions(**{**base.__dict__, "adaptive": 0.3})
    adaptive_tex, trace = optimise(system, shots, torch.from_numpy(own), adaptive_opts)
    adaptive = judge(system, shots, adaptive_tex, own, adaptive_opts, held)
    assert control.flagged == 0  # no alarm for a random print of the same shape
    assert naive.flagged >= 3  # the accessory optimised without the detector is caught
    assert adaptive.flagged < naive.flagged and adaptive.success.k > naive.success.k
    assert len(trace.evade) == adaptive_opts.steps and max(trace.evade) > 0  # it had to act


def test_adaptive_needs_a_detector_to_evade() -> None:
    system = FaceSystem(PooledPixels(), threshold=4.0, capture=Capture("hog"))
    shot = shot_of(system, g.demo_photo(ATTACKER, 2), "p")
    with pytest.raises(ValueError, match="no detector to evade"):
        optimise(system, [shot], torch.zeros(1, 64), PhysicalOptions(steps=1, adaptive=1.0))
    with pytest.raises(ValueError, match="adaptive must be >= 0"):
        PhysicalOptions(adaptive=-1.0)
