"""Chip-space vs photo-space impersonation, measured through a live gate.

For each impostor pair (attacker photo A, victim B enrolled in the gate) a white-box attacker
who has the gate's model crafts, with the library's PGD (full budget, Linf) at each ``eps``:

* ``chip``: an adversarial *chip* (A's chip, as the gate would cut it) pasted back into photo
  A through the inverse of the chip's similarity transform;
* ``photo``: a perturbation of photo A's pixels through the differentiable alignment
  (:class:`facerobust.attacks.photo.PhotoFaceModel`, landmarks from the clean photo);
* ``photo+eot``: the same with EOT over small grid shifts/scales and JPEG re-encoding.

Each adversarial photo is quantised to uint8 (never leaving the eps-ball) and submitted to
``POST /verify`` claiming B, as PNG and as JPEG; the gate re-detects, re-aligns and decides.
``in_memory`` is the success on the attacker's own aligned chip, before the gate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from facerobust.attacks.criteria import Impersonation
from facerobust.attacks.photo import ChipWarp, PhotoFaceModel, WarpPlan, paste_chip_delta
from facerobust.attacks.registry import build_attack, full_budget
from facerobust.core.stats import Rate
from facerobust.data import align
from facerobust.eval.results import Unit
from facerobust.service.blackbox import dataset_root, impostor_pairs, load_photo, usable_pairs
from facerobust.service.client import GateClient
from facerobust.service.pipeline import load_model
from facerobust.service.report import render
from facerobust.service.summary import eps_label

METHODS = ("chip", "photo", "photo+eot")
PHOTO_SCHEMA = 1


@dataclass(frozen=True)
class Cell(Unit):
    method: str
    eps: float
    fmt: str  # how the photo was submitted: "png" or "jpeg:Q"
    gate_success: Rate
    in_memory_success: Rate  # the attacker's own chip, before the gate (same for each fmt)
    crafted_success: Rate | None = None  # PGD's own success on what it attacked (chip/photo)


@dataclass(frozen=True)
class PhotoStudyResults(Unit):
    schema: int
    gate: dict[str, Any]
    model: str
    steps: int
    eot_samples: int
    jpeg_eot: int
    cells: list[Cell]
    samples: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


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


def craft(model: torch.nn.Module, photo: torch.Tensor, target: torch.Tensor, method: str,
          epsilons: list[float], *, steps: int, threshold: float, eot: int, jpeg: int,
          plan: Any, seed: int) -> tuple[list[torch.Tensor], list[bool], list[bool]]:
    """Adversarial photos (one per eps), the attacker's in-memory success (its alignment of
    the final uint8 photo) and PGD's own success on what it attacked."""

    metric = str(getattr(model, "metric", "euclidean"))
    crit = Impersonation(target, threshold=threshold, metric=metric)  # type: ignore[arg-type]
    attack = full_budget(build_attack("pgd", norm="linf", steps=steps))
    gen = torch.Generator().manual_seed(seed)
    chip = ChipWarp(plan)(photo).detach()
    if method == "chip":
        res = attack(model, chip, crit, epsilons=epsilons, generator=gen)
        advs = [paste_chip_delta(photo, c - chip, plan) for c in res.clipped]
    else:
        net = PhotoFaceModel(model, plan, eot_samples=eot if method == "photo+eot" else 1,
                             jpeg=jpeg if method == "photo+eot" else 0, seed=seed)
        res = attack(net, photo, crit, epsilons=epsilons, generator=gen)
        advs = res.clipped
    own = [bool(res.success[i, 0]) for i in range(len(epsilons))]
    advs = [quantise(a, photo, e) for a, e in zip(advs, epsilons, strict=True)]
    with torch.no_grad():
        mem = [bool(crit.is_adversarial(model(ChipWarp(plan)(a)))[0]) for a in advs]
    return advs, mem, own


def run_photo_study(url: str, *, key: str, admin_key: str, model_name: str,
                    epsilons: list[float], n: int, out: Path, steps: int = 10, eot: int = 4,
                    jpeg: int = 90, formats: tuple[str, ...] = ("png", "jpeg:90"),
                    dataset: str = "lfw-demo", data: Path | None = None, seed: int = 0,
                    progress: bool = True) -> Path:
    """Run the study on ``n`` impostor pairs; writes ``out/results.json``."""

    target_file = Path(out) / "results.json"
    if target_file.exists():
        raise ValueError(f"{target_file} exists: choose another --out")
    for f in formats:
        if f != "png" and not (f.startswith("jpeg:") and f[5:].isdigit()):
            raise ValueError(f"format {f!r}: use 'png' or 'jpeg:Q'")
    model = load_model(model_name)
    client = GateClient(url, key, wait=True)
    gate = client.health()
    threshold = float(gate.get("threshold") or getattr(model, "threshold", 0.5) or 0.5)
    skipped: list[dict[str, str]] = []
    pairs = usable_pairs(client, impostor_pairs(dataset_root(dataset, data), 3 * n, seed),
                         admin_key, n, skipped)
    samples: list[dict[str, Any]] = []
    iterator: Any = pairs
    if progress:

        iterator = tqdm(pairs, desc="photo-space study", unit="pair")
    for i, (a_path, b_path) in enumerate(iterator):
        photo, victim = load_photo(a_path)[None], load_photo(b_path)[None]
        plans = []
        for img in (photo, victim):
            rgb = (img[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            pts = align.detect_landmarks(np.ascontiguousarray(rgb), "hog")
            plans.append(None if pts is None else _plan(pts, rgb.shape[:2]))
        if plans[0] is None or plans[1] is None:
            skipped.append({"path": str(a_path), "reason": "no face found by the attacker"})
            continue
        samples.append(_one(client, model, photo, victim, plans, b_path.parent.name,
                            epsilons, formats, steps=steps, threshold=threshold, eot=eot,
                            jpeg=jpeg, seed=seed + i, name=str(a_path)))
    client.close()
    result = PhotoStudyResults(PHOTO_SCHEMA, gate, model_name, steps, eot, jpeg,
                               _cells(samples, epsilons, formats), samples, skipped)
    target_file.parent.mkdir(parents=True, exist_ok=True)
    target_file.write_text(json.dumps(result.to_dict(), indent=2))

    render(target_file)
    return target_file


def _plan(pts: np.ndarray, hw: tuple[int, ...]) -> Any:

    return WarpPlan.from_landmarks(pts, (int(hw[0]), int(hw[1])))


def _one(client: GateClient, model: torch.nn.Module, photo: torch.Tensor,
         victim: torch.Tensor, plans: list[Any], claimed: str, epsilons: list[float],
         formats: tuple[str, ...], *, name: str, **kw: Any) -> dict[str, Any]:

    with torch.no_grad():
        target = model(ChipWarp(plans[1])(victim)).detach()
    out: dict[str, Any] = {"attacker_photo": name, "victim": claimed, "results": {}}
    for method in METHODS:
        advs, mem, own = craft(model, photo, target, method, epsilons, plan=plans[0], **kw)
        for e, adv, m, o in zip(epsilons, advs, mem, own, strict=True):
            for fmt in formats:
                data, ctype = encode(adv, fmt)
                ans = client.verify(data, claimed, ctype)
                out["results"][f"{method}|{eps_label(e)}|{fmt}"] = {
                    "accepted": ans.accepted, "in_memory": m, "crafted": o,
                    "status": ans.status,
                    "score": ans.score}
    return out


def _cells(samples: list[dict[str, Any]], epsilons: list[float],
           formats: tuple[str, ...]) -> list[Cell]:
    cells = []
    for method in METHODS:
        for e in epsilons:
            for fmt in formats:
                rows = [s["results"][f"{method}|{eps_label(e)}|{fmt}"] for s in samples]
                cells.append(Cell(method, e, fmt, Rate.of([r["accepted"] for r in rows]),
                                  Rate.of([r["in_memory"] for r in rows]),
                                  Rate.of([r["crafted"] for r in rows])))
    return cells


def describe(results: PhotoStudyResults) -> list[str]:
    lines = [f"impersonation through the gate ({results.gate.get('model')}), PGD-"
             f"{results.steps} Linf, EOT {results.eot_samples} (JPEG q={results.jpeg_eot}):"]
    for c in results.cells:
        lines.append(f"  {c.method:9s} eps {eps_label(c.eps):6s} as {c.fmt:7s}: gate "
                     f"{c.gate_success.text()}; in memory {c.in_memory_success.text()}"
                     + (f"; PGD itself {c.crafted_success.text()}" if c.crafted_success
                        else ""))
    return lines
