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
from facerobust.data.warp import ChipWarp, paste_chip_delta
from facerobust.eval.results_file import write_result_file
from facerobust.eval.results_gate import Cell, PhotoStudyResults
from facerobust.eval.stats import Rate
from facerobust.service.blackbox import dataset_root, impostor_pairs, load_photo, usable_pairs
from facerobust.service.client import GateClient
from facerobust.system import FaceSystem, PhotoOptions, SystemSpec

METHODS = ("chip", "photo", "photo+eot")


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


def craft(system: FaceSystem, photo: torch.Tensor, target: torch.Tensor, method: str,
          epsilons: list[float], *, steps: int, threshold: float, eot: int, jpeg: int,
          plan: WarpPlan, seed: int) -> tuple[list[torch.Tensor], list[bool], list[bool]]:
    """Adversarial photos (one per eps), the attacker's in-memory success (its alignment of
    the final uint8 photo) and PGD's own success on what it attacked."""

    model = system.model
    metric = str(getattr(model, "metric", "euclidean"))
    crit = Impersonation(target, threshold=threshold, metric=metric)  # type: ignore[arg-type]
    attack = full_budget(build_attack("pgd", LINF, steps=steps))
    gen = torch.Generator().manual_seed(seed)
    chip = ChipWarp(plan)(photo).detach()
    if method == "chip":
        res = attack(model, chip, crit, epsilons=epsilons, generator=gen)
        advs = [paste_chip_delta(photo, c - chip, plan) for c in res.clipped]
    else:
        eot_on = method == "photo+eot"
        net = system.photo_model(plan, PhotoOptions(eot_samples=eot if eot_on else 1,
                                                    jpeg=jpeg if eot_on else 0, seed=seed))
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
    """Run the study on ``n`` impostor pairs; writes ``out/results.json`` (kind
    ``gate-photo``; ``facerobust report`` renders it)."""

    target_file = Path(out) / "results.json"
    if target_file.exists():
        raise ValueError(f"{target_file} exists: choose another --out")
    for f in formats:
        if f != "png" and not (f.startswith("jpeg:") and f[5:].isdigit()):
            raise ValueError(f"format {f!r}: use 'png' or 'jpeg:Q'")
    client = GateClient(url, key, wait=True)
    gate = client.health()
    replica = SystemSpec(model=model_name, defense=str(gate.get("defense") or "none"),
                         detector=str(gate.get("detector") or "hog"),
                         threshold=float(gate.get("threshold") or 0.0))
    system = FaceSystem.from_spec(replica, scorers={})  # the attacker's white-box replica
    threshold = system.threshold
    skipped: list[dict[str, str]] = []
    pairs = usable_pairs(client, impostor_pairs(dataset_root(dataset, data), 3 * n, seed),
                         admin_key, n, skipped)
    samples: list[dict[str, Any]] = []
    iterator: Any = pairs
    if progress:

        iterator = tqdm(pairs, desc="photo-space study", unit="pair")
    for i, (a_path, b_path) in enumerate(iterator):
        photo, victim = load_photo(a_path)[None], load_photo(b_path)[None]
        plans = [_plan(system, img) for img in (photo, victim)]
        if plans[0] is None or plans[1] is None:
            skipped.append({"path": str(a_path), "reason": "no face found by the attacker"})
            continue
        samples.append(_one(client, system, photo, victim, plans, b_path.parent.name,
                            epsilons, formats, steps=steps, threshold=threshold, eot=eot,
                            jpeg=jpeg, seed=seed + i, name=str(a_path)))
    client.close()
    result = PhotoStudyResults(gate, model_name, steps, eot, jpeg,
                               _cells(samples, epsilons, formats), samples, skipped)
    return write_result_file(target_file, result)


def _plan(system: FaceSystem, img: torch.Tensor) -> WarpPlan | None:
    """The warp plan the system's capture finds for a photo tensor, or ``None`` (no face)."""
    rgb = np.ascontiguousarray((img[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())
    try:
        return system.capture.locate(rgb).plan
    except CaptureError:
        return None


def _one(client: GateClient, system: FaceSystem, photo: torch.Tensor,
         victim: torch.Tensor, plans: list[Any], claimed: str, epsilons: list[float],
         formats: tuple[str, ...], *, name: str, **kw: Any) -> dict[str, Any]:
    with torch.no_grad():
        target = system.model(ChipWarp(plans[1])(victim)).detach()
    out: dict[str, Any] = {"attacker_photo": name, "victim": claimed, "results": {}}
    for method in METHODS:
        advs, mem, own = craft(system, photo, target, method, epsilons, plan=plans[0], **kw)
        for e, adv, m, o in zip(epsilons, advs, mem, own, strict=True):
            for fmt in formats:
                data, ctype = encode(adv, fmt)
                ans = client.verify(data, claimed, ctype)
                out["results"][f"{method}|{LINF.format_epsilon(e)}|{fmt}"] = {
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
