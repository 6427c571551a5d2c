"""Throughput and skip rate of ``facerobust data prepare`` on colour photos, before and after
the detectors worked at their working size (issue #30), at original size and upscaled 3x.

Samples ``--n`` colour photos (half LFW-colour ``$FACEROBUST_DATA/lfw-color/images/<person>``,
half CFP ``$FACEROBUST_DATA/cfp/Data/Images/<id>/frontal``; or any folder with ``--photos``)
and copies them to a temporary folder as they are ("original", mostly 150-360 px) and
upscaled 3x ("phone", bicubic, JPEG quality 95), before any timing. Each case runs
``prepare_dataset(workers=--workers)`` cold (its own empty chip cache) in a fresh process;
the chains are

* ``before``: the detectors at up to 1600 px (``FACEROBUST_DETECT_SIDE=1600``: the chain
  before #30 on these sizes), or with ``--before-src DIR`` the prepare code of another source
  tree (e.g. ``/work/main/src`` before the merge);
* ``after``: this tree's defaults.

Cases run interleaved for ``--rounds`` rounds; each prints photos/s (wall clock) and skip rate,
and the summary gives medians, the CPU seconds per photo (workers included: what the box's
load barely changes) with the photos/s they allow on free cores, the speed-up, and how far
the after-chips lie from the before-chips on the photos both chains detect (pixel |diff|,
from the two caches). Ends with::

    RESULT photos_per_s=<phone-size, after> skip_rate=<phone-size, after>

    FACEROBUST_DATA=/work/shared/data .venv/bin/python benchmarks/prepare_speed.py --n 60
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from facerobust.data import align
from facerobust.data import chip_cache as cc
from facerobust.data.capture import header_size
from facerobust.data.lfw import IMAGE_SUFFIXES

SIZES = {"original": 1, "phone": 3}
CHAINS = ("before", "after")
CHILD = """
import json, resource, sys
from facerobust.data.prepare import prepare_dataset
def cpu(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime
before = cpu(resource.RUSAGE_SELF)
rep = prepare_dataset(sys.argv[1], workers=int(sys.argv[2]), progress=False)
used = cpu(resource.RUSAGE_SELF) - before + cpu(resource.RUSAGE_CHILDREN)
print(json.dumps({"total": rep.total, "skipped": len(rep.skipped), "seconds": rep.seconds,
                  "cpu": used}))
"""


def sample(data: Path, n: int, seed: int, photos: Path | None) -> list[Path]:
    """``n`` photos, half LFW-colour and half CFP frontal (or any under ``photos``), seeded."""
    rng = random.Random(seed)
    if photos is not None:
        found = sorted(p for p in photos.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        return rng.sample(found, min(n, len(found)))
    lfw = sorted((data / "lfw-color" / "images").glob("*/*.jpg"))
    cfp = sorted((data / "cfp" / "Data" / "Images").glob("*/frontal/*.jpg"))
    if not lfw or not cfp:
        raise SystemExit(f"need {data}/lfw-color/images and {data}/cfp/Data/Images")
    return rng.sample(lfw, min(n - n // 2, len(lfw))) + rng.sample(cfp, min(n // 2, len(cfp)))


def write_copies(files: list[Path], dest: Path, scale: int) -> None:
    """The photos under ``dest/<dataset>-<folder>/``; upscaled (bicubic, JPEG q95) when
    ``scale > 1``."""
    for i, f in enumerate(files):
        out = dest / f"{i:04d}-{f.parent.name}" / f.name
        out.parent.mkdir(parents=True, exist_ok=True)
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise SystemExit(f"{f}: not a decodable image")
        if scale > 1:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(out), img, [cv2.IMWRITE_JPEG_QUALITY, 95])


def run_case(photos: Path, cache: Path, chain: str, workers: int,
             before_src: Path | None) -> dict[str, float]:
    """One cold ``prepare_dataset`` run in a fresh process; its counts and seconds."""
    env = dict(os.environ, FACEROBUST_CACHE=str(cache), OMP_NUM_THREADS="1")
    env.pop(align.DETECT_SIDE_ENV, None)
    src = os.environ.get("PYTHONPATH", "")
    if chain == "before":
        if before_src is not None:
            src = str(before_src)
        else:
            env[align.DETECT_SIDE_ENV] = "1600"
    env["PYTHONPATH"] = src
    out = subprocess.run([sys.executable, "-c", CHILD, str(photos), str(workers)], env=env,
                         capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def photo_sides(photos: Path) -> dict[str, int]:
    """The longer side of every photo under ``photos``, by the sha256 the chip cache uses."""
    sides = {}
    for path in photos.rglob("*.jpg"):
        data = path.read_bytes()
        size = header_size(data)
        if isinstance(size, tuple):
            sides[hashlib.sha256(data).hexdigest()] = max(size)
    return sides


def chip_agreement(cache_a: Path, cache_b: Path, sides: dict[str, int]) -> list[str]:
    """Pixel |diff| between the chips two caches hold for the same source files, for the
    photos within the working size and for those detected on a shrunk copy."""
    diffs: dict[bool, list[np.ndarray]] = {False: [], True: []}
    for png in sorted(cache_b.rglob("*.png")):
        others = [p for p in cache_a.rglob(png.name) if not p.name.startswith(".tmp-")]
        if png.name.startswith(".tmp-") or not others:
            continue
        det = "cnn" if ".cnn." in png.name else "hog"
        a = cc.read_chip(others[0], det, others[0].parent.parent.name)
        b = cc.read_chip(png, det, png.parent.parent.name)
        if a is not None and b is not None:
            shrunk = sides.get(png.name.split(".")[0], 0) > align.detect_side()
            diffs[shrunk].append(np.abs(a[0].astype(int) - b[0].astype(int)))
    out = []
    for shrunk, found in diffs.items():
        if not found:
            continue
        within = sum(int(d.max() <= 1) for d in found)
        means = [float(d.mean()) for d in found]
        out.append(f"{len(found)} {'shrunk' if shrunk else 'as they are'}: {within} chips "
                   f"within 1 level; mean |diff| median {statistics.median(means):.2f}, max "
                   f"{max(means):.2f}")
    return out or ["no photo detected by both chains"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="default: $FACEROBUST_DATA")
    parser.add_argument("--photos", type=Path, default=None,
                        help="sample any photo folder (recursive) instead of LFW-colour + CFP")
    parser.add_argument("--n", type=int, default=60, help="photos per case (default 60)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--before-src", type=Path, default=None,
                        help="source tree whose prepare is 'before' (default: this tree with "
                             "FACEROBUST_DETECT_SIDE=1600)")
    args = parser.parse_args()
    data = args.data or Path(os.environ.get("FACEROBUST_DATA", "/work/shared/data"))
    files = sample(data, args.n, args.seed, args.photos)
    rates: dict[tuple[str, str], list[float]] = {}
    skips: dict[tuple[str, str], list[float]] = {}
    cpus: dict[tuple[str, str], list[float]] = {}  # CPU seconds per photo, workers included
    with tempfile.TemporaryDirectory(prefix="prepare-speed-") as tmp:
        for size, scale in SIZES.items():
            write_copies(files, Path(tmp) / size, scale)
        for rnd in range(args.rounds):
            for size in SIZES:
                for chain in CHAINS:
                    cache = Path(tmp) / f"cache-{size}-{chain}-{rnd}"
                    res = run_case(Path(tmp) / size, cache, chain, args.workers,
                                   args.before_src)
                    rate, skip = res["total"] / res["seconds"], res["skipped"] / res["total"]
                    rates.setdefault((size, chain), []).append(rate)
                    cpus.setdefault((size, chain), []).append(res["cpu"] / res["total"])
                    skips.setdefault((size, chain), []).append(skip)
                    print(f"round {rnd} {size:8s} {chain:6s} {res['total']:.0f} photos "
                          f"{res['seconds']:.2f} s {rate:6.1f} photos/s skip {skip:.3f} "
                          f"(load {os.getloadavg()[0]:.1f})", flush=True)
        print(f"medians over {args.rounds} round(s), {args.workers} workers, "
              f"{os.cpu_count()} CPUs:")
        for size in SIZES:
            med = {c: statistics.median(rates[(size, c)]) for c in CHAINS}
            for chain in CHAINS:
                per = statistics.median(cpus[(size, chain)])
                print(f"  {size:8s} {chain:6s} {med[chain]:6.1f} photos/s skip "
                      f"{statistics.median(skips[(size, chain)]):.3f}; {per * 1000:.0f} CPU ms "
                      f"per photo = {args.workers / per:.1f} photos/s on {args.workers} free "
                      "cores")
            print(f"  {size:8s} speed-up {med['after'] / med['before']:.2f}x")
            for line in chip_agreement(Path(tmp) / f"cache-{size}-before-0",
                                       Path(tmp) / f"cache-{size}-after-0",
                                       photo_sides(Path(tmp) / size)):
                print(f"  {size:8s} chips after vs before, photos {line}")
    key = ("phone", "after")
    print(f"RESULT photos_per_s={statistics.median(rates[key]):.1f} "
          f"skip_rate={statistics.median(skips[key]):.3f}")


if __name__ == "__main__":
    main()
