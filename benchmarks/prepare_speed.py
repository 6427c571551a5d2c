"""Throughput of ``prepare_dataset`` (detect + align + cache) with 1 and with 2 worker processes.

Copies a seeded sample of ``--n`` LFW images (``$FACEROBUST_DATA/lfw-gray`` or ``--data``) into
a temporary folder and prepares it cold twice, each run with its own empty chip cache, then a
third time warm (resumed: everything cached). Prints each run and::

    RESULT n=300 detector=hog+cnn workers1=.. img/s workers2=.. img/s ratio=.. resumed=.. img/s

The ratio is bounded by the free CPU cores (spawning and loading dlib cost each worker ~1 s).

    FACEROBUST_DATA=/work/shared/data .venv/bin/python benchmarks/prepare_speed.py --n 300
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="lfw-gray folder")
    parser.add_argument("--n", type=int, default=300, help="LFW images (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--detector", default="hog+cnn")
    parser.add_argument("--workers", type=int, default=2, help="the parallel run's workers")
    args = parser.parse_args()
    root = args.data or Path(os.environ.get("FACEROBUST_DATA", "/work/shared/data")) / "lfw-gray"
    files = sorted((root / "images").rglob("*.jpg"))
    files = random.Random(args.seed).sample(files, min(args.n, len(files)))

    from facerobust.data.prepare import prepare_dataset

    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="prepare-speed-") as tmp:
        photos = Path(tmp) / "photos"
        for f in files:
            dest = photos / f.parent.name / f.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dest)
        for label, workers, cache in (("workers1", 1, "c1"), (f"workers{args.workers}",
                                      args.workers, "c2"), ("resumed", args.workers, "c2")):
            os.environ["FACEROBUST_CACHE"] = str(Path(tmp) / cache)
            rep = prepare_dataset(photos, workers=workers, detector=args.detector,
                                  progress=False)
            rates[label] = rep.images_per_second
            print(f"{label:9s} {rep.lines()[0]}; ok {rep.ok}, skipped {len(rep.skipped)}",
                  flush=True)
    par = f"workers{args.workers}"
    print(f"RESULT n={len(files)} detector={args.detector} workers1={rates['workers1']:.1f} "
          f"img/s {par}={rates[par]:.1f} img/s ratio={rates[par] / rates['workers1']:.2f} "
          f"resumed={rates['resumed']:.0f} img/s cpus={os.cpu_count()}")


if __name__ == "__main__":
    main()
