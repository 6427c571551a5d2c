"""The face system under test: capture -> defense -> model -> detectors -> decision.

One object holds what a door gate (or an audited deployment) is: the capture
(:class:`facerobust.data.capture.Capture`), the model wrapped in its defense, the
adversarial-input detectors, the operating threshold and the decision rule
(:func:`facerobust.models.base.accepts`, the one accept rule). The gate's routes, the audit's
units and the gate studies all decide through it.

Two capture paths share one warp plan: :meth:`FaceSystem.probe` is the exact
(non-differentiable) path that decides at the gate; :meth:`FaceSystem.photo_model` is the
differentiable path (photo pixels -> chip -> defended model) for white-box attacks in photo
space through the very pipeline that decides.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from facerobust.data.align import WarpPlan
from facerobust.data.capture import Capture, Captured
from facerobust.defenses import DefendedModel, parse_defense
from facerobust.models.base import accepts
from facerobust.system.photo import PhotoFaceModel, PhotoOptions
from facerobust.system.smoothed import smoothed_vote, smoothing_of, without_noise
from facerobust.system.spec import (
    Scorer,
    SystemSpec,
    load_detectors,
    load_model,
    operating_threshold,
)

NOT_ENROLLED = "identity not enrolled"


@dataclass
class Probe:
    """One captured photo as the system sees it."""

    sha256: str
    chip: torch.Tensor  # (1, 3, size, size) float in [0, 1]
    embedding: np.ndarray  # (D,) float32 raw descriptor
    flags: dict[str, Any] = field(default_factory=dict)
    captured: Captured | None = None


@dataclass(frozen=True)
class Gallery:
    """Enrolled templates: one row of ``templates`` per entry of ``names``."""

    names: tuple[str, ...]
    templates: np.ndarray  # (K, D) float32

    def __post_init__(self) -> None:
        if len(self.names) != self.templates.shape[0]:
            raise ValueError(f"gallery has {len(self.names)} names but "
                             f"{self.templates.shape[0]} templates")


@dataclass(frozen=True)
class Decision:
    """What the system decided: ``accepted`` (verify: the claim holds; identify: a match),
    the identity it concerns (claimed, or the best match), the best distance, why, and the
    detectors' flags."""

    accepted: bool
    identity: str | None
    distance: float | None
    reason: str
    flags: dict[str, Any] = field(default_factory=dict)


class FaceSystem:
    """Capture, defended model, detectors, threshold and the decision rule of one system."""

    def __init__(self, model: nn.Module, *, threshold: float, defense: str = "none",
                 capture: Capture | None = None, scorers: dict[str, Scorer] | None = None,
                 name: str = "") -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        self.base = model
        self.name = name or str(getattr(model, "name", type(model).__name__))
        self.defense_spec = defense
        self.model = DefendedModel(model, parse_defense(defense)).eval()
        self.threshold = float(threshold)
        self.metric = str(getattr(model, "metric", "euclidean"))
        self.capture = capture if capture is not None else Capture()
        self.scorers = dict(scorers or {})
        self.smoothing = smoothing_of(self.model.defense)  # decide by majority of noisy draws
        # embeddings (enrolment, probes) without the noise: only the smoothed vote draws it
        self.clean_model = self.model if self.smoothing is None else DefendedModel(
            model, without_noise(self.model.defense)).eval()
        self._lock = threading.Lock()  # one forward at a time: torch threads are the budget

    @classmethod
    def from_spec(cls, spec: SystemSpec, *, capture: Capture | None = None,
                  model: nn.Module | None = None,
                  scorers: dict[str, Scorer] | None = None,
                  where: str = "system") -> FaceSystem:
        """Load the parts ``spec`` names (``model`` / ``scorers`` override the loaders);
        errors name the config table ``where``."""
        base = load_model(spec.model, f"{where}.model") if model is None else model
        threshold = operating_threshold(spec.model, base, spec.threshold)
        if scorers is None:
            scorers = load_detectors(spec.detectors, base, spec.model, f"{where}.detectors")
        cap = capture if capture is not None else Capture(spec.detector)
        return cls(base, threshold=threshold, defense=spec.defense, capture=cap,
                   scorers=scorers, name=spec.model)

    def describe(self) -> dict[str, Any]:
        return {"model": self.name, "defense": self.defense_spec,
                "detector": self.capture.detector, "threshold": self.threshold,
                "metric": self.metric, "detectors": sorted(self.scorers)}

    # ----------------------------------------------------------------- model and detectors
    def embed(self, chips: torch.Tensor) -> torch.Tensor:
        """Raw descriptors of chips (N, 3, s, s) through the defense and the model (without the
        ``smooth`` stage's noise: templates and reported distances stay noise-free)."""
        with self._lock, torch.no_grad():
            return self.clean_model(chips).float()

    def flags(self, chips: torch.Tensor) -> dict[str, Any]:
        """Every detector's flags on ``chips``, keyed ``"<detector>.<flag>"``."""
        out: dict[str, Any] = {}
        with self._lock, torch.no_grad():
            for name, scorer in self.scorers.items():
                out.update({f"{name}.{k}": v for k, v in scorer(chips).items()})
        return out

    @staticmethod
    def flagged(flags: dict[str, Any]) -> bool:
        """True when a detector's ``reject`` flag is set."""
        return any(k.endswith(".reject") and bool(v) for k, v in flags.items())

    # ----------------------------------------------------------------- capture
    def probe(self, data: bytes, field_name: str = "photo") -> Probe:
        """Photo bytes through the exact capture, the defended model and the detectors."""
        captured = self.capture(data, field_name)
        x = torch.from_numpy(captured.chip).permute(2, 0, 1)[None].float().div(255.0)
        emb = self.embed(x)[0].numpy().astype(np.float32)
        return Probe(hashlib.sha256(data).hexdigest(), x, emb, self.flags(x), captured)

    def photo_model(self, plan: WarpPlan, options: PhotoOptions | None = None) -> nn.Module:
        """The differentiable capture path of ``plan``: photo (1, 3, H, W) in [0, 1] -> chip ->
        defended model (optionally EOT over capture variation)."""
        return PhotoFaceModel(self.model, plan, options or PhotoOptions())

    # ----------------------------------------------------------------- decision
    def distances(self, emb: np.ndarray, templates: np.ndarray) -> np.ndarray:
        """Distance of one descriptor to each template row (the model's metric)."""
        if templates.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        a = torch.from_numpy(np.repeat(emb[None], templates.shape[0], axis=0))
        with torch.no_grad():
            return self.model.distance(a, torch.from_numpy(templates)).double().numpy()

    def accepts(self, distances: np.ndarray) -> np.ndarray:
        """The accept rule at this system's threshold, elementwise."""
        return accepts(np.asarray(distances), self.threshold)

    def verify(self, probe: Probe, claimed: str, templates: np.ndarray) -> Decision:
        """Does ``probe`` show ``claimed`` (enrolled as ``templates``)? Nearest template
        within the threshold, and no detector rejects it."""
        flags = dict(probe.flags)
        dist = self.distances(probe.embedding, templates)
        if dist.size == 0:
            return Decision(False, claimed, None, NOT_ENROLLED, {**flags, "reason": NOT_ENROLLED})
        best = float(dist.min())
        if self.smoothing is not None:
            return self._decide_smoothed(probe, claimed, best, templates, flags)
        return self._decide(best, claimed, flags)

    def identify(self, probe: Probe, gallery: Gallery) -> Decision:
        """The nearest enrolled identity when it is within the threshold (else none)."""
        dist = self.distances(probe.embedding, gallery.templates)
        if dist.size == 0:
            return Decision(False, None, None, "gallery is empty", dict(probe.flags))
        i = int(dist.argmin())
        if self.smoothing is not None:
            return self._decide_smoothed(probe, None, float(dist[i]), gallery.templates,
                                         dict(probe.flags), gallery.names)
        return self._decide(float(dist[i]), gallery.names[i], dict(probe.flags))

    def _decide_smoothed(self, probe: Probe, claimed: str | None, distance: float,
                         templates: np.ndarray, flags: dict[str, Any],
                         names: Sequence[str] = ()) -> Decision:
        """The majority decision of ``self.smoothing.n`` noisy draws (abstain rejects)."""
        noise = self.smoothing
        if noise is None:
            raise ValueError("this system has no smooth defense")
        if self.flagged(flags):  # before the n draws: a detector's reject costs nothing more
            return Decision(False, claimed, distance, "rejected by a detector", flags)
        tic = time.perf_counter()
        with self._lock:
            vote = smoothed_vote(self.model, probe.chip, templates, self.threshold, noise)
        flags = {**flags, "smoothed.counts": list(vote.counts),
                 "smoothed.seconds": round(time.perf_counter() - tic, 4)}
        identity = claimed if claimed is not None else (
            names[vote.match] if vote.match is not None else None)
        if vote.abstained:
            return Decision(False, identity, distance, "smoothed decision abstains", flags)
        if vote.match is None:
            return Decision(False, identity, distance, "smoothed decision: no match", flags)
        return Decision(True, identity, distance, "match (smoothed)", flags)

    def _decide(self, distance: float, identity: str, flags: dict[str, Any]) -> Decision:
        if self.flagged(flags):
            return Decision(False, identity, distance, "rejected by a detector", flags)
        if not accepts(distance, self.threshold):
            return Decision(False, identity, distance, "distance above the threshold", flags)
        return Decision(True, identity, distance, "match", flags)

    def decide_pairs(self, distances: Sequence[float] | np.ndarray, same: np.ndarray
                     ) -> np.ndarray:
        """Per pair, whether the system decides it correctly (accept genuine, reject
        impostor)."""
        return np.asarray(self.accepts(np.asarray(distances))) == np.asarray(same, dtype=bool)
