"""Chip-space vs photo-space impersonation, measured through a live gate.

For each impostor pair (attacker photo A, victim B enrolled in the gate) a white-box attacker
who has a replica of the gate's face system (model, defense, detector chain, threshold, as
``/healthz`` describes them) crafts, with the library's PGD (full budget, Linf) at each ``eps``:

* ``chip``: an adversarial *chip* (A's chip, as the gate would cut it) pasted back into photo
  A through the inverse of the chip's similarity transform;
* ``photo``: a perturbation of photo A's pixels through the differentiable alignment
  (:meth:`facerobust.system.FaceSystem.photo_model`, landmarks from the clean photo);
* ``photo+eot``: the same with EOT over small grid shifts/scales and JPEG re-encoding.

Each adversarial photo is quantised to uint8 (never leaving the eps-ball) and submitted to
``POST /verify`` claiming B, as PNG and as JPEG; the gate re-detects, re-aligns and decides.
``in_memory`` is the success on the attacker's own aligned chip, before the gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from facerobust.attacks.criteria import Impersonation
from facerobust.attacks.registry import build_attack, full_budget
from facerobust.attacks.threat import LINF
from facerobust.data.align import WarpPlan
from facerobust.data.capture import CaptureError
from facerobust.data.sources import Dataset
from facerobust.data.warp import ChipWarp, paste_chip_delta
from facerobust.eval.datasource import DataSource, ImpostorPair
from facerobust.eval.results_file import write_result_file
from facerobust.eval.results_gate import Cell, PhotoStudyResults
from facerobust.eval.stats import Rate
from facerobust.service.blackbox import GateAccess, load_photo, study_pairs, usable_pairs
from facerobust.service.client import GateClient
from facerobust.system import FaceSystem, PhotoOptions, SystemSpec

METHODS = ("chip", "photo", "photo+eot")


@dataclass(frozen=True)
class PhotoStudyOptions:
    """The attacker's replica ``model_name``; PGD-``steps`` at each Linf budget of
    ``epsilons``; ``eot`` draws with JPEG quality ``jpeg`` for photo+eot; the upload
    ``formats`` (``png``, ``jpeg:Q``); ``n`` impostor pairs (seeded)."""

    model_name: str = "dlib-resnet"
    epsilons: tuple[float, ...] = (2 / 255, 4 / 255, 8 / 255)
    n: int = 20
    steps: int = 10
    eot: int = 4
    jpeg: int = 90
    formats: tuple[str, ...] = ("png", "jpeg:90")
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.n < 1 or self.steps < 1 or self.eot < 1:
            raise ValueError("--n, --steps and --eot must be >= 1")
        for f in self.formats:
            if f != "png" and not (f.startswith("jpeg:") and f[5:].isdigit()):
                raise ValueError(f"format {f!r}: use 'png' or 'jpeg:Q'")


@dataclass(frozen=True)
class Crafting:
    """How one adversarial photo is crafted: the attacker's ``system`` and its decision
    ``threshold``, the study's options and the ``seed`` of this pair."""

    system: FaceSystem
    threshold: float
    options: PhotoStudyOptions
    seed: int


@dataclass(frozen=True)
class Victim:
    """One pair as the attacker sees it: the attacker ``photo``, the ``target`` descriptor
    (the victim's chip), the attacker photo's warp ``plan`` and the ``claimed`` identity."""

    photo: torch.Tensor
    target: torch.Tensor
    plan: WarpPlan
    claimed: str
    name: str


def quantise(adv: torch.Tensor, photo: torch.Tensor, eps: float) -> torch.Tensor:
    """uint8-representable photo within ``eps`` (Linf) of the uint8 ``photo``."""
    k = int(round(eps * 255))
    p = (photo * 255).round()
    a = (adv * 255).round().clamp(p - k, p + k).clamp(0, 255)
    return a / 255


def encode(x: torch.Tensor, fmt: str) -> tuple[bytes, str]:

    arr = (x[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    bgr = np.ascontiguousarray(arr[:, :, ::-1])
    if fmt == "png":
        return bytes(cv2.imencode(".png", bgr)[1]), "image/png"
    q = int(fmt.split(":")[1])
    return bytes(cv2.imencode(".jpg", bgr, [int(cv2.IMWRITE_JPEG_QUALITY), q])[1]), "image/jpeg"


def craft(how: Crafting, victim: Victim, method: str
          ) -> tuple[list[torch.Tensor], list[bool], list[bool]]:
    """Adversarial photos (one per eps), the attacker's in-memory success (its alignment of
    the final uint8 photo) and PGD's own success on what it attacked."""

    o, plan, photo = how.options, victim.plan, victim.photo
    epsilons = list(o.epsilons)
    model = how.system.model
    metric = str(getattr(model, "metric", "euclidean"))
    crit = Impersonation(victim.target, threshold=how.threshold,
                         metric=metric)  # type: ignore[arg-type]
    attack = full_budget(build_attack("pgd", LINF, steps=o.steps))
    gen = torch.Generator().manual_seed(how.seed)
    chip = ChipWarp(plan)(photo).detach()
    if method == "chip":
        res = attack(model, chip, crit, epsilons=epsilons, generator=gen)
        advs = [paste_chip_delta(photo, c - chip, plan) for c in res.clipped]
    else:
        eot_on = method == "photo+eot"
        net = how.system.photo_model(plan, PhotoOptions(eot_samples=o.eot if eot_on else 1,
                                                        jpeg=o.jpeg if eot_on else 0,
                                                        seed=how.seed))
        res = attack(net, photo, crit, epsilons=epsilons, generator=gen)
        advs = res.clipped
    own = [bool(res.success[i, 0]) for i in range(len(epsilons))]
    advs = [quantise(a, photo, e) for a, e in zip(advs, epsilons, strict=True)]
    with torch.no_grad():
        mem = [bool(crit.is_adversarial(model(ChipWarp(plan)(a)))[0]) for a in advs]
    return advs, mem, own


def replica(client: GateClient, model_name: str) -> tuple[dict[str, Any], FaceSystem]:
    """The gate's ``/healthz`` and the attacker's white-box replica of its face system
    (model ``model_name``, the gate's defense, detector chain and threshold)."""
    gate = client.health()
    spec = SystemSpec(model=model_name, defense=str(gate.get("defense") or "none"),
                      detector=str(gate.get("detector") or "hog"),
                      threshold=float(gate.get("threshold") or 0.0))
    return gate, FaceSystem.from_spec(spec, scorers={})


def run_photo_study(gate: GateAccess, options: PhotoStudyOptions, *,
                    source: Dataset | DataSource | Path | str, out: Path) -> Path:
    """Run the study on ``options.n`` impostor pairs of ``source`` (any layout); writes
    ``out`` (a ``results.json`` of kind ``gate-photo``; ``facerobust report`` renders it)."""

    o = options
    client = GateClient(gate.url, gate.key, wait=True)
    health, system = replica(client, o.model_name)
    skipped: list[dict[str, str]] = []
    pairs = usable_pairs(client, study_pairs(source, o.n, o.seed), gate.admin_key, o.n,
                         skipped)
    samples: list[dict[str, Any]] = []
    iterator: Any = tqdm(pairs, desc="photo-space study", unit="pair") if o.progress \
        else pairs
    for i, pair in enumerate(iterator):
        victim = _victim(system, pair)
        if victim is None:
            skipped.append({"path": str(pair.photo), "reason": "no face found by the attacker"})
            continue
        samples.append(_one(client, Crafting(system, system.threshold, o, o.seed + i), victim))
    client.close()
    result = PhotoStudyResults(health, o.model_name, o.steps, o.eot, o.jpeg,
                               _cells(samples, list(o.epsilons), o.formats), samples, skipped)
    return write_result_file(out, result)


def _plan(system: FaceSystem, img: torch.Tensor) -> WarpPlan | None:
    """The warp plan the system's capture finds for a photo tensor, or ``None`` (no face)."""
    rgb = np.ascontiguousarray((img[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())
    try:
        return system.capture.locate(rgb).plan
    except CaptureError:
        return None


def _victim(system: FaceSystem, pair: ImpostorPair) -> Victim | None:
    """The pair as the attacker sees it; ``None`` when its capture finds no face in either
    photo."""
    photo, other = load_photo(pair.photo)[None], load_photo(pair.victim_photo)[None]
    plans = [_plan(system, img) for img in (photo, other)]
    if plans[0] is None or plans[1] is None:
        return None
    with torch.no_grad():
        target = system.model(ChipWarp(plans[1])(other)).detach()
    return Victim(photo, target, plans[0], pair.victim, str(pair.photo))


def _one(client: GateClient, how: Crafting, victim: Victim) -> dict[str, Any]:
    """Every method x budget x format of one pair, each submitted to the gate."""
    out: dict[str, Any] = {"attacker_photo": victim.name, "victim": victim.claimed,
                           "results": {}}
    for method in METHODS:
        advs, mem, own = craft(how, victim, method)
        for e, adv, m, o in zip(how.options.epsilons, advs, mem, own, strict=True):
            for fmt in how.options.formats:
                data, ctype = encode(adv, fmt)
                ans = client.verify(data, victim.claimed, ctype)
                out["results"][f"{method}|{LINF.format_epsilon(e)}|{fmt}"] = {
                    "accepted": ans.accepted, "in_memory": m, "crafted": o,
                    "status": ans.status, "score": ans.score}
    return out


def _cells(samples: list[dict[str, Any]], epsilons: list[float],
           formats: tuple[str, ...]) -> list[Cell]:
    cells = []
    for method in METHODS:
        for e in epsilons:
            for fmt in formats:
                rows = [s["results"][f"{method}|{LINF.format_epsilon(e)}|{fmt}"] for s in samples]
                cells.append(Cell(method, e, fmt, Rate.of([r["accepted"] for r in rows]),
                                  Rate.of([r["in_memory"] for r in rows]),
                                  Rate.of([r["crafted"] for r in rows])))
    return cells


def describe(results: PhotoStudyResults) -> list[str]:
    lines = [f"impersonation through the gate ({results.gate.get('model')}), PGD-"
             f"{results.steps} Linf, EOT {results.eot_samples} (JPEG q={results.jpeg_eot}):"]
    for c in results.cells:
        lines.append(f"  {c.method:9s} eps {LINF.format_epsilon(c.eps):6s} as {c.fmt:7s}: gate "
                     f"{c.gate_success.text()}; in memory {c.in_memory_success.text()}"
                     + (f"; PGD itself {c.crafted_success.text()}" if c.crafted_success
                        else ""))
    return lines
