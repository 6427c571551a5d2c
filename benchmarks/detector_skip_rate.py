"""How many images lose their face with dlib's HOG detector alone vs HOG then CNN ("hog+cnn").

Takes a seeded sample of ``--n`` LFW images (``$FACEROBUST_DATA/lfw-gray`` or ``--data``) and
writes harder framings of each into a temporary folder:

* ``original``: the LFW file itself (250x250, face centred);
* ``rot30``: rotated 30 degrees about the centre (black corners);
* ``down40``: downscaled to 40% (100x100, face ~40 px);
* ``offcentre``: shifted by 30% / 22% of the size so the face sits at the bottom-right edge;
* ``pad3x``: pasted at a random place of a 3x larger (750x750) mid-grey canvas;
* ``exif90``: pixels rotated 90 degrees with an EXIF orientation tag that undoes it;
* ``rot50``: rotated 50 degrees (beyond what HOG's frontal templates tolerate).

Each framing is aligned with ``load_chips(detector="hog")`` and then ``detector="hog+cnn"``
in a fresh private cache (the second run reuses HOG's results and runs the CNN detector only
on HOG's misses, exactly as a real run would). Prints a table, then::

    RESULT n=300 original=hog:0.7%/hog+cnn:0.0% rot30=... (skip rates per framing)

    FACEROBUST_DATA=/work/shared/data .venv/bin/python benchmarks/detector_skip_rate.py --n 100
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np

FRAMINGS = ("original", "rot30", "down40", "offcentre", "pad3x", "exif90", "rot50")


def sample(root: Path, n: int, seed: int) -> list[Path]:
    files = sorted((root / "images").rglob("*.jpg"))
    return random.Random(seed).sample(files, min(n, len(files)))


def frame(src: Path, framing: str, out: Path, rng: np.random.Generator) -> Path:
    """Write ``src`` in ``framing`` as a JPEG under ``out`` (``original`` is ``src`` itself)."""
    import cv2
    from PIL import Image

    if framing == "original":
        return src
    gray = np.asarray(Image.open(src).convert("L"))
    h, w = gray.shape
    dest = out / framing / src.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    exif = b""
    if framing in ("rot30", "rot50"):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), int(framing[3:]), 1.0)
        img = cv2.warpAffine(gray, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    elif framing == "down40":
        img = cv2.resize(gray, (round(w * 0.4), round(h * 0.4)), interpolation=cv2.INTER_AREA)
    elif framing == "offcentre":
        m = np.float32([[1, 0, 0.30 * w], [0, 1, 0.22 * h]])
        img = cv2.warpAffine(gray, m, (w, h), borderValue=0)
    elif framing == "pad3x":
        img = np.full((3 * h, 3 * w), 128, np.uint8)
        y, x = rng.integers(0, 2 * h + 1), rng.integers(0, 2 * w + 1)
        img[y:y + h, x:x + w] = gray
    elif framing == "exif90":
        img = np.rot90(gray, 1)  # stored turned left; orientation 6 turns it back right
        tags = Image.Exif()
        tags[0x0112] = 6
        exif = tags.tobytes()
    else:
        raise ValueError(framing)
    Image.fromarray(np.ascontiguousarray(img)).save(dest, "JPEG", quality=95, exif=exif)
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="lfw-gray folder")
    parser.add_argument("--n", type=int, default=300, help="LFW images (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--framings", default=",".join(FRAMINGS))
    args = parser.parse_args()
    root = args.data or Path(os.environ.get("FACEROBUST_DATA", "/work/shared/data")) / "lfw-gray"
    files = sample(root, args.n, args.seed)
    rng = np.random.default_rng(args.seed)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="skip-rate-") as tmp:
        os.environ["FACEROBUST_CACHE"] = str(Path(tmp) / "cache")
        from facerobust.data.chips import load_chips

        for framing in args.framings.split(","):
            paths = [frame(f, framing, Path(tmp), rng) for f in files]
            row: dict[str, float] = {}
            for detector in ("hog", "hog+cnn"):
                t0 = time.perf_counter()
                cs = load_chips(paths, detector=detector)
                row[detector] = len(cs.skipped) / len(paths)
                row[f"{detector} s/img"] = (time.perf_counter() - t0) / len(paths)
                if detector == "hog+cnn":
                    row["cnn chips"] = cs.detector_counts().get("cnn", 0)
            results[framing] = row
            print(f"{framing:10s} skipped: hog {row['hog']:6.1%}  hog+cnn {row['hog+cnn']:6.1%}"
                  f"  (cnn rescued {row['cnn chips']:.0f}; {row['hog s/img'] * 1000:.0f} ms/img "
                  f"hog, +{row['hog+cnn s/img'] * 1000:.0f} ms/img for the cnn pass)", flush=True)
    parts = [f"{k}=hog:{v['hog']:.1%}/hog+cnn:{v['hog+cnn']:.1%}" for k, v in results.items()]
    print(f"RESULT n={len(files)} " + " ".join(parts))


if __name__ == "__main__":
    main()
