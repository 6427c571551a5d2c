"""Certified decisions of the face system: its verification and identification decisions
smoothed with Gaussian noise on the canonical chip (:mod:`facerobust.defenses.smoothing`),
each with a certified L2 radius, and the adaptive attack that checks it.

Verification: class 1 ("accept") when the system's accept rule holds for the claimed
identity's template, else 0 ("reject"); a certified reject of an impostor at radius r means
no chip perturbation of L2 norm below r makes the smoothed system accept that impostor.
Identification: the nearest enrolled identity within the threshold, else "no match".
(The detectors are not part of the smoothed decision: the guarantee is about the model's
decision rule.)

The models take chips in [0, 1], so the base decision clamps the noisy chip first: clamping is
part of the base classifier f, the noise itself is not clipped, and Cohen et al.'s theorem
holds for any base classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from facerobust.defenses.smoothing import (
    Certificate,
    Decider,
    SmoothingOptions,
    certify,
    threshold_decider,
)
from facerobust.defenses.smoothing_attack import SmoothAttackOptions, attack_certificate
from facerobust.models.base import accepts
from facerobust.system.face_system import FaceSystem, Gallery

ACCEPT, REJECT = 1, 0
NO_MATCH = "no match"
TEMPERATURE = 0.05  # soft decisions: sigmoid / softmax of (threshold - distance) / (T * thr)


def _box(x: torch.Tensor) -> torch.Tensor:
    """The noisy chip as the model takes it (part of the base decision, see the docstring)."""
    return x.clamp(0.0, 1.0)


def _template(template: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(template, dtype=np.float32))
    if t.ndim != 1:
        raise ValueError(f"a template is one descriptor (D,), got shape {tuple(t.shape)}")
    return t


def verification_decider(system: FaceSystem, template: np.ndarray | torch.Tensor) -> Decider:
    """Accept (1) / reject (0) of chips claiming the identity enrolled as ``template`` (D,),
    by the system's accept rule; the soft decision follows ``threshold - distance``."""
    t, thr = _template(template), system.threshold

    def margin(x: torch.Tensor) -> torch.Tensor:
        emb = system.clean_model(_box(x)).float()
        return thr - system.model.distance(emb, t.expand(len(emb), -1))

    decider = threshold_decider(margin, TEMPERATURE * thr)

    def hard(x: torch.Tensor) -> torch.Tensor:
        emb = system.embed(_box(x))
        return accepts(system.model.distance(emb, t.expand(len(emb), -1)), thr).long()

    return Decider(decider.labels, hard, decider.soft)


def gallery_decider(system: FaceSystem, gallery: Gallery) -> Decider:
    """The enrolled identity nearest to the chip when the accept rule holds, else
    "no match" (the last class), as :meth:`FaceSystem.identify` decides."""
    if len(gallery.names) == 0:
        raise ValueError("the gallery is empty")
    templates, thr = torch.as_tensor(gallery.templates).float(), system.threshold
    k = len(gallery.names)

    def distances(emb: torch.Tensor) -> torch.Tensor:
        a = emb.repeat_interleave(k, dim=0)
        return system.model.distance(a, templates.repeat(len(emb), 1)).view(len(emb), k)

    def hard(x: torch.Tensor) -> torch.Tensor:
        dist = distances(system.embed(_box(x)))
        best, i = dist.min(dim=1)
        return torch.where(accepts(best, thr), i, torch.full_like(i, k))

    def soft(x: torch.Tensor) -> torch.Tensor:
        logits = (thr - distances(system.clean_model(_box(x)).float())) / (TEMPERATURE * thr)
        return torch.cat([logits, torch.zeros(len(x), 1)], dim=1).softmax(dim=1)

    return Decider((*gallery.names, NO_MATCH), hard, soft)


def logits_decider(model: nn.Module, names: Sequence[str]) -> Decider:
    """The top class of a closed-set identification model (chips -> logits over ``names``);
    the soft decision is its softmax."""
    if len(names) < 2:
        raise ValueError(f"identification needs >= 2 classes, got {len(names)}")

    def hard(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(_box(x)).argmax(dim=1)

    def soft(x: torch.Tensor) -> torch.Tensor:
        return model(_box(x)).float().softmax(dim=1)

    return Decider(tuple(names), hard, soft)


@dataclass(frozen=True)
class ProbeCertificate:
    """One probe's certified decision: the correct class, the certificate, and the adaptive
    attack's outcome within the certified radius (``None``: not attacked)."""

    expected: int
    certificate: Certificate
    decision: str
    attack_flipped: bool | None = None
    attack_distance: float | None = None

    @property
    def correct(self) -> bool:
        return self.certificate.label == self.expected

    def certified(self, radius: float) -> bool:
        """Certified correct at L2 ``radius``."""
        return self.certificate.certified(self.expected, radius)

    def to_dict(self) -> dict[str, Any]:
        c = self.certificate
        return {"decision": self.decision, "expected": self.expected, "correct": self.correct,
                "radius": c.radius, "abstain": c.abstained, "p_lower": c.p_lower,
                "count": c.count, "n": c.n, "seconds": c.seconds,
                "attack_flipped": self.attack_flipped, "attack_distance": self.attack_distance}


def certify_probe(decider: Decider, chip: torch.Tensor, expected: int,
                  options: SmoothingOptions, attack: SmoothAttackOptions | None = None
                  ) -> ProbeCertificate:
    """CERTIFY one chip (1, 3, s, s) and, when it is certified and ``attack`` is given, run
    the EOT-PGD attack within its radius and re-estimate the smoothed decision there."""
    cert = certify(decider, chip, options)
    decision = "abstain" if cert.label is None else decider.labels[cert.label]
    if attack is None or cert.label is None or cert.radius is None:
        return ProbeCertificate(expected, cert, decision)
    gen = torch.Generator().manual_seed(options.seed + 1)
    outcome = attack_certificate(decider, chip, cert.label, cert.radius, options, attack, gen)
    return ProbeCertificate(expected, cert, decision, outcome.flipped, outcome.distance)


def certify_probes(deciders: Sequence[Decider], chips: torch.Tensor, expected: Sequence[int],
                   options: SmoothingOptions, attack: SmoothAttackOptions | None = None
                   ) -> list[ProbeCertificate]:
    """:func:`certify_probe` for each chip of ``chips`` (N, 3, s, s), probe ``i`` seeded with
    ``options.seed + 2 * i`` (reproducible one by one)."""
    if not len(deciders) == len(chips) == len(expected):
        raise ValueError(f"need one decider and one expected class per chip, got "
                         f"{len(deciders)} deciders, {len(chips)} chips, {len(expected)} classes")
    return [certify_probe(d, chips[i:i + 1], int(e), replace(options, seed=options.seed + 2 * i),
                          attack)
            for i, (d, e) in enumerate(zip(deciders, expected, strict=True))]


def certified_rate(probes: Sequence[ProbeCertificate], radius: float) -> tuple[int, int]:
    """(certified correct at ``radius``, probes)."""
    return sum(p.certified(radius) for p in probes), len(probes)
