"""Score image files with a saved detector: photos go through the audit's own detection and
alignment; ``chips=True`` reads aligned 150x150 chips as they are. Files that cannot be read
or hold no face are reported, never fatal."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from facerobust import models
from facerobust.data.chips import MAX_BYTES, load_chips, read_image
from facerobust.detectors.registry import load_detector


def _read_chip(path: Path) -> torch.Tensor | str:
    if not path.is_file():
        return "no such file"
    if path.stat().st_size > MAX_BYTES:
        return f"file larger than {MAX_BYTES} bytes"
    rgb, reason = read_image(path.read_bytes())
    if rgb is None:
        return reason
    if rgb.shape[:2] != (150, 150):
        return f"a chip must be 150x150 pixels, got {rgb.shape[1]}x{rgb.shape[0]}"
    return torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0


def score_images(detector_file: Path, images: Sequence[Path], *, model_name: str,
                 chips: bool = False) -> list[dict[str, Any]]:
    """One row per file: its score, the threshold and whether it is flagged (or an error)."""

    detector = load_detector(detector_file, models.load(model_name), model_name=model_name)
    rows: list[dict[str, Any]] = []
    tensors: list[torch.Tensor] = []
    if chips:
        for path in images:
            chip = _read_chip(Path(path))
            if isinstance(chip, str):
                rows.append({"path": str(path), "error": chip})
            else:
                rows.append({"path": str(path)})
                tensors.append(chip)
    else:
        aligned = load_chips([Path(p) for p in images], cache=False)
        reasons = {s.path: s.reason for s in aligned.skipped}
        for path in images:
            p = Path(path)
            if p in aligned.index:
                rows.append({"path": str(path)})
                tensors.append(aligned.chips[aligned.index[p]])
            else:
                rows.append({"path": str(path), "error": reasons.get(p, "no usable face")})
    if tensors:
        scores = detector.score(torch.stack(tensors))
        threshold = float(detector.threshold or 0.0)
        ok = [r for r in rows if "error" not in r]
        for row, score in zip(ok, scores.tolist(), strict=True):
            row.update(score=float(score), threshold=threshold, flagged=bool(score > threshold),
                       detector=detector.name)
    return rows
