"""Adversarial-input detectors with one API (:class:`~facerobust.detectors.base.Detector`):
the trajectory LSTM of Massoli et al. (``trajectory``), feature squeezing (``squeeze``), and
embedding monitors (``ocsvm``, ``iforest``, ``gallery``). :func:`build_detector` makes one by
name; :func:`save_detector` / :func:`load_detector` keep a fitted one with the model it belongs to.
"""

from facerobust.detectors.base import Detector, model_sha256, threshold_at_fpr
from facerobust.detectors.registry import (
    DETECTORS,
    build_detector,
    load_detector,
    save_detector,
)

__all__ = ["DETECTORS", "Detector", "build_detector", "load_detector", "model_sha256",
           "save_detector", "threshold_at_fpr"]
