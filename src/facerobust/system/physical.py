"""Physical accessories against a face system: a printable texture inside an accessory's
region (:mod:`facerobust.attacks.accessory`), rendered onto the attacker's *photo* where the
capture's landmarks put it, optimised through the differentiable capture path under capture
variation (EOT, :mod:`facerobust.system.capture_variation`) with printability and smoothness
terms, and judged by the exact pipeline that decides at the gate (JPEG bytes -> detection ->
landmarks -> warp -> defense -> model -> detectors -> threshold) on held-out captures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from torch import nn

from facerobust.attacks.accessory import (
    DEFAULT_PALETTE,
    cell_pixels,
    nearest_palette,
    non_printability,
    palette_tensor,
    region,
    total_variation,
)
from facerobust.core.stats import Rate
from facerobust.data.align import WarpPlan
from facerobust.data.capture import CaptureError
from facerobust.data.warp import ChipWarp, chip_frame_to_photo
from facerobust.detectors.registry import DetectorScorer
from facerobust.system.capture_variation import CaptureVariation, Draw, draws, light, place
from facerobust.system.face_system import FaceSystem, Gallery, Probe

VERIFY_GOALS = ("dodging", "impersonation")  # against one claimed identity's template
IDENTIFY_GOALS = ("untargeted", "targeted")  # against a gallery (closed-set identification)
GOALS = VERIFY_GOALS + IDENTIFY_GOALS
TRAIN_POOL = 64  # training capture draws the optimiser cycles through


@dataclass(frozen=True)
class PhysicalOptions:
    """One accessory attack: region, goal, optimisation and physical constraints."""

    accessory: str = "eyeglasses"
    goal: str = "dodging"  # dodging | impersonation
    steps: int = 60
    eot_samples: int = 4  # training capture draws per step
    lr: float = 0.1  # Adam on the texture's logits
    printability: float = 0.3  # weight of the non-printability score
    smoothness: float = 0.3  # weight of the total variation
    margin: float = 0.05  # push the distance this far past the threshold
    min_feature_mm: float = 3.0  # smallest printed feature at the stated face width
    heldout_captures: int = 6  # judged captures per photo
    seed: int = 0
    adaptive: float = 0.0  # > 0: weight of the term pushing the system's detectors' scores down
    palette: tuple[tuple[float, float, float], ...] = DEFAULT_PALETTE
    variation: CaptureVariation = field(default_factory=CaptureVariation)

    def __post_init__(self) -> None:
        region(self.accessory, 8)  # validates the name
        if self.goal not in GOALS:
            raise ValueError(f"goal must be one of {', '.join(GOALS)}, got {self.goal!r}")
        if self.adaptive < 0:
            raise ValueError(f"adaptive must be >= 0, got {self.adaptive}")
        for name in ("steps", "eot_samples", "heldout_captures"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        cell_pixels(self.min_feature_mm)
        palette_tensor(self.palette)


@dataclass(frozen=True)
class Shot:
    """One attacker photo as the capture sees it: pixels (1, 3, H, W) and its warp plan."""

    name: str
    photo: torch.Tensor
    plan: WarpPlan


def shot_of(system: FaceSystem, data: bytes, name: str) -> Shot:
    """The exact capture of a clean photo (its landmarks place the accessory)."""
    captured = system.capture(data, name)
    photo = torch.from_numpy(captured.rgb).permute(2, 0, 1)[None].float().div(255.0)
    return Shot(name, photo, captured.plan)


class Texture(nn.Module):
    """The printable texture: logits on a grid of ``cell`` chip pixels (the minimum feature
    size), upsampled to the chip frame and squashed into [0, 1]."""

    def __init__(self, options: PhysicalOptions, size: int = 150,
                 init: torch.Tensor | None = None) -> None:
        super().__init__()
        self.size, self.cell = size, cell_pixels(options.min_feature_mm)
        cells = math.ceil(size / self.cell)
        gen = torch.Generator().manual_seed(options.seed)
        start = torch.randn(1, 3, cells, cells, generator=gen) if init is None else init
        self.logits = nn.Parameter(start.clone())

    def forward(self) -> torch.Tensor:
        up = self.logits.repeat_interleave(self.cell, 2).repeat_interleave(self.cell, 3)
        return torch.sigmoid(up[:, :, : self.size, : self.size])


def wear(shot: Shot, texture: torch.Tensor, mask: torch.Tensor,
         draw: Draw | None = None) -> torch.Tensor:
    """The photo with the accessory on (as placed by ``draw``), under its lighting."""
    worn_chip = torch.cat([texture * mask, mask], dim=1)
    if draw is not None:
        worn_chip = place(worn_chip, draw)
    h, w = shot.photo.shape[2:]
    layer = chip_frame_to_photo(worn_chip, shot.plan, h, w)
    photo = shot.photo * (1 - layer[:, 3:]) + layer[:, :3]
    return photo if draw is None else light(photo, draw)


def goal_loss(distance: torch.Tensor, threshold: float, options: PhysicalOptions,
              index: int = 0) -> torch.Tensor:
    """Hinge on the distances (N, K) to the target templates, by ``margin``: to template 0
    below the threshold for impersonation, above it for dodging; for identification,
    template ``index`` (the attacker's own: untargeted; the victim's: targeted) must lose
    the nearest-template decision (untargeted) or win it within the threshold (targeted)."""
    m = options.margin
    if options.goal == "impersonation":
        return torch.relu(distance[:, 0] - (threshold - m)).mean()
    if options.goal == "dodging":
        return torch.relu(threshold + m - distance[:, 0]).mean()
    aim = distance[:, index]
    others = torch.cat([distance[:, :index], distance[:, index + 1:]], dim=1).amin(dim=1)
    if options.goal == "untargeted":  # someone else nearer, or the attacker out of reach
        return torch.minimum(torch.relu(others - aim + m),
                             torch.relu(threshold + m - aim)).mean()
    return (torch.relu(aim - others + m) + torch.relu(aim - (threshold - m))).mean()


@dataclass
class Trace:
    """Per optimisation step: total loss, goal loss, non-printability, total variation."""

    loss: list[float] = field(default_factory=list)
    goal: list[float] = field(default_factory=list)
    nps: list[float] = field(default_factory=list)
    tv: list[float] = field(default_factory=list)
    evade: list[float] = field(default_factory=list)  # detector hinge (adaptive only)


def evaders(system: FaceSystem) -> list[DetectorScorer]:
    """The system's detectors an adaptive attacker can differentiate through."""
    return [s for s in system.scorers.values() if isinstance(s, DetectorScorer)]


def evasion(system: FaceSystem, chips: torch.Tensor, options: PhysicalOptions) -> torch.Tensor:
    """The adaptive term: every detector's hinge on ``chips`` (zero when not adaptive)."""
    if options.adaptive == 0:
        return chips.new_zeros(())
    found = evaders(system)
    if not found:
        raise ValueError("adaptive accessory: the face system has no detector to evade "
                         "(give detector files with --detectors)")
    return sum((s.evasion_loss(chips) for s in found), chips.new_zeros(()))


def optimise(system: FaceSystem, shots: Sequence[Shot], target: torch.Tensor,
             options: PhysicalOptions, train: Sequence[Draw] | None = None,
             on_step: Callable[[int], None] | None = None,
             index: int = 0) -> tuple[torch.Tensor, Trace]:
    """One texture for all of ``shots`` (one shot = per photo) towards (impersonation) or
    away from (dodging) the ``target`` template (1, D), or -- identification goals -- for
    or against row ``index`` of the gallery ``target`` (K, D) (:func:`goal_loss`); returns
    the printable texture (each pixel a palette colour) and the trace. Only ``train`` draws
    are used (default: a pool of training draws)."""
    o = options
    pool = list(train) if train is not None else draws(o.variation, TRAIN_POOL, o.seed, "train")
    if any(d.purpose != "train" for d in pool):
        raise ValueError("optimise() takes training capture draws only")
    mask, palette = region(o.accessory), palette_tensor(o.palette)
    texture = Texture(o)
    opt = torch.optim.Adam(texture.parameters(), lr=o.lr)
    trace, model = Trace(), system.model
    for step in range(o.steps):
        picked = [pool[(step * o.eot_samples + j) % len(pool)] for j in range(o.eot_samples)]
        tex = texture()
        chips = torch.cat([ChipWarp(s.plan)(wear(s, tex, mask, d), d.jitter)
                           for s in shots for d in picked])
        emb = model(chips)
        dist = torch.stack([model.distance(emb, t.expand(emb.shape[0], -1))
                            for t in target.split(1)], dim=1)
        g, nps, tv = goal_loss(dist, system.threshold, o, index), \
            non_printability(tex, mask, palette), total_variation(tex, mask)
        evade = evasion(system, chips, o)
        loss = g + o.printability * nps + o.smoothness * tv + o.adaptive * evade
        opt.zero_grad()
        loss.backward()
        opt.step()
        for name, value in (("loss", loss), ("goal", g), ("nps", nps), ("tv", tv),
                            ("evade", evade)):
            getattr(trace, name).append(float(value.detach()))
        if on_step is not None:
            on_step(step)
    with torch.no_grad():
        return nearest_palette(texture(), palette), trace


def control_texture(options: PhysicalOptions) -> torch.Tensor:
    """The baseline: random palette colours on the same cell grid (seeded)."""
    palette = palette_tensor(options.palette)
    cell = cell_pixels(options.min_feature_mm)
    cells = math.ceil(150 / cell)
    gen = torch.Generator().manual_seed(options.seed + 1)
    idx = torch.randint(len(palette), (cells, cells), generator=gen)
    tex = palette[idx].permute(2, 0, 1)[None]
    return tex.repeat_interleave(cell, 2).repeat_interleave(cell, 3)[:, :, :150, :150]


def captured_bytes(photo: torch.Tensor, quality: int) -> bytes:
    """What the camera sends: the photo as uint8 JPEG at ``quality``."""
    rgb = (photo[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
    ok, buf = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return bytes(buf)


@dataclass(frozen=True)
class Judged:
    """Held-out captures judged by the exact pipeline: successes, captures in which no face
    was found, and captures a detector flagged (neither counts as a success: a flagged
    capture raises the alarm, whatever the goal)."""

    success: Rate
    no_face: int
    flagged: int = 0


def heldout_captures(shots: Sequence[Shot], texture: torch.Tensor,
                     options: PhysicalOptions, heldout: Sequence[Draw]) -> list[tuple[str, bytes]]:
    """What the camera sends for each shot under each held-out draw: ``(name, JPEG bytes)``
    with the accessory worn (the same bytes for every judge of one study)."""
    if any(d.purpose != "heldout" for d in heldout):
        raise ValueError("judge() takes held-out capture draws only")
    mask = region(options.accessory)
    with torch.no_grad():
        return [(shot.name, captured_bytes(wear(shot, texture, mask, draw), draw.jpeg))
                for shot in shots for draw in heldout]


def judge(system: FaceSystem, shots: Sequence[Shot], texture: torch.Tensor,
          templates: np.ndarray, options: PhysicalOptions,
          heldout: Sequence[Draw], index: int = 0) -> Judged:
    """Wear ``texture`` on each shot under each held-out draw, send the JPEG through the
    system's exact capture and decide against ``templates`` (the target's, or the gallery)."""
    return decide(system, heldout_captures(shots, texture, options, heldout), templates,
                  options.goal, index)


def succeeded(system: FaceSystem, probe: Probe, templates: np.ndarray, goal: str,
              index: int) -> bool:
    """The goal met by one probe: verification against ``templates`` (accept for
    impersonation, reject for dodging), or the gallery's identification (row ``index``
    not named: untargeted; named and accepted: targeted)."""
    if goal in VERIFY_GOALS:
        accepted = system.verify(probe, "target", templates).accepted
        return accepted == (goal == "impersonation")
    gallery = Gallery(tuple(str(i) for i in range(templates.shape[0])), templates)
    found = system.identify(probe, gallery)
    named = found.accepted and found.identity == str(index)
    return named if goal == "targeted" else not named


def decide(system: FaceSystem, captures: Sequence[tuple[str, bytes]], templates: np.ndarray,
           goal: str, index: int = 0) -> Judged:
    """``system``'s exact decisions on rendered ``captures`` against ``templates``
    (:func:`succeeded`); a capture a detector flagged is caught, never a success."""
    wins, no_face, flagged = 0, 0, 0
    for name, data in captures:
        try:
            probe = system.probe(data, name)
        except CaptureError:
            no_face += 1
            continue
        if system.flagged(probe.flags):
            flagged += 1
            continue
        wins += int(succeeded(system, probe, templates, goal, index))
    return Judged(Rate(wins, len(captures)), no_face, flagged)


__all__ = ["GOALS", "IDENTIFY_GOALS", "VERIFY_GOALS", "Judged", "PhysicalOptions", "Shot",
           "Texture", "Trace", "succeeded",
           "captured_bytes", "control_texture", "decide", "evaders", "evasion", "goal_loss",
           "heldout_captures", "judge",
           "optimise", "shot_of", "wear"]
