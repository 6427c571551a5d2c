"""The gate's face system: :class:`facerobust.system.FaceSystem` built from a gate config.

bytes -> the capture's size/pixel checks and decode -> face detection + 5-point alignment
(the audit's detector chain) -> configured defense -> model -> optional detectors -> distance
to the gallery, decided by the system's one accept rule at the model's operating threshold.
"""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from facerobust.data.capture import Capture, CaptureError
from facerobust.service.config import GateConfig
from facerobust.service.gallery_guard import GALLERY, GalleryGuard
from facerobust.service.storage import Store
from facerobust.system import FaceSystem
from facerobust.system.spec import Scorer

ProbeError = CaptureError  # the gate's name for a photo it cannot use (field + HTTP status)


def gate_system(config: GateConfig, model: nn.Module | None = None,
                scorers: dict[str, Scorer] | None = None) -> FaceSystem:
    """The face system ``config`` describes, with the gate's upload limits on its capture."""
    lim = config.limits
    spec = replace(config.system, detectors=tuple(d for d in config.system.detectors
                                                  if d != GALLERY))
    capture = Capture(config.gate.detector, max_bytes=lim.max_bytes, max_pixels=lim.max_pixels,
                      formats=config.image_formats)
    return FaceSystem.from_spec(spec, capture=capture, model=model, scorers=scorers,
                                  where="gate")


def guard_gallery(system: FaceSystem, config: GateConfig, store: Store) -> None:
    """Add the gallery-distance detector fitted on ``store``'s gallery when the config
    names ``"gallery"`` among its detectors."""
    if GALLERY in config.gate.detectors:
        system.scorers[GALLERY] = GalleryGuard(store, system.clean_model,
                                               config.gate.gallery_fpr)


__all__ = ["ProbeError", "gate_system", "guard_gallery"]
