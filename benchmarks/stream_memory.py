"""Peak memory (RSS) of an embedding + evaluation pass over 1k vs 10k chips: flat when streamed.

Each measurement runs in a fresh subprocess, which loads the model (dlib-resnet, 1 torch
thread), scans the files into a chip set (``load_chips(..., lazy=True)``, as
``Experiment.prepare`` does: every cache entry is checked, no chip is kept), embeds every chip
with :func:`facerobust.eval.tasks.embed` in batches of ``--batch`` (chips read from the chip
cache batch by batch, as ``Experiment.embeddings`` does) and scores ``n / 2`` pairs with the
model's distance, then reports its peak RSS (``resource.getrusage``, ``ru_maxrss``). The
in-memory chip store is off in the measured pass (``FACEROBUST_CHIP_MEMORY_MB=0``): with it,
add up to its budget.
``--eager`` also measures the pre-streaming path (every chip loaded into one float32 tensor
first) for comparison.

Chips: by default **synthetic** chip files -- ``n`` distinct small source files, each with a
chip-cache entry in the real format (150x150 RGB PNG with its pixel hash, detector and
settings; smooth random images of a chip's size, not faces), in a temporary cache. Aligning
10,000 LFW photos for real takes ~3.3 min of 2 idle cores (50.8 images/s, docs/scale.md; ~5
min with 1 worker), too long on a box shared with other jobs. ``--real`` instead uses LFW
photos (``$FACEROBUST_DATA/lfw-gray``) whose chips are already in the chip cache (no
alignment is run; it stops if fewer than n are cached).

Ends with (streamed path)::

    RESULT rss_1k_mb=<MB> rss_10k_mb=<MB> ratio=<10k / 1k>

    PYTHONPATH=src .venv/bin/python benchmarks/stream_memory.py [--sizes 1000 10000] [--eager]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KB


def child(listing: Path, eager: bool, batch: int) -> None:
    """The measured pass (in a subprocess); prints one JSON line."""
    import torch

    from facerobust import models
    from facerobust.allocator import keep_freed_memory
    from facerobust.data.chips import load_chips
    from facerobust.eval.tasks import embed

    torch.set_num_threads(1)
    keep_freed_memory()  # as the CLI does (FACEROBUST_MALLOC=default measures glibc's default)
    model = models.load("dlib-resnet")
    model.requires_grad_(False)
    paths = [Path(p) for p in listing.read_text().split("\n") if p]
    before = _rss_mb()
    tic = time.perf_counter()
    chips = load_chips(paths, lazy=not eager)
    if len(chips) != len(paths):
        raise SystemExit(f"only {len(chips)} of {len(paths)} chips loaded: {chips.skipped[:3]}")
    emb = embed(model, chips.chips, batch)
    half = len(emb) // 2
    dist = model.distance(emb[:half], emb[half:2 * half])  # type: ignore[operator]
    print(json.dumps({"n": len(paths), "rss_mb": _rss_mb(), "rss_model_mb": before,
                      "seconds": time.perf_counter() - tic, "mean_distance": float(dist.mean()),
                      "embedding_mb": emb.numel() * 4 / 2**20}))


def synthetic(folder: Path, n: int) -> list[Path]:
    """``n`` source files with chip-cache entries in the real format (see the docstring), in
    the cache ``$FACEROBUST_CACHE`` names."""
    import numpy as np

    from facerobust.data import chip_cache as cc
    from facerobust.data.chips import chip_cache_root

    root = chip_cache_root()
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        src = folder / f"{i // 1000:02d}" / f"synthetic_{i:05d}.jpg"
        src.parent.mkdir(parents=True, exist_ok=True)
        data = f"synthetic source {i}".encode()
        src.write_bytes(data)
        coarse = rng.integers(40, 215, size=(15, 15, 3), dtype=np.uint8)
        chip = np.kron(coarse, np.ones((10, 10, 1), dtype=np.uint8))
        chip = (chip + rng.integers(0, 8, size=chip.shape, dtype=np.uint8)).astype(np.uint8)
        png, _ = cc.entry_paths(root, hashlib.sha256(data).hexdigest(), "hog")
        cc.atomic_write(png, cc.encode_chip(chip, 1, "hog", root.name))
        out.append(src)
    return out


def cached_lfw(n: int) -> list[Path]:
    """The first ``n`` LFW photos (sorted) whose HOG chip is already in the chip cache."""
    from facerobust.data import chip_cache as cc
    from facerobust.data.chips import chip_cache_root

    root, found = chip_cache_root(), []
    lfw = Path(os.environ.get("FACEROBUST_DATA", "/work/shared/data")) / "lfw-gray"
    for path in sorted((lfw / "images").rglob("*.jpg")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if cc.entry_paths(root, digest, "hog")[0].is_file():
            found.append(path)
            if len(found) == n:
                return found
    raise SystemExit(f"--real: only {len(found)} LFW photos have cached chips; need {n} "
                     "(run `facerobust data prepare` on lfw-gray first)")


def measure(files: list[Path], tmp: Path, eager: bool, batch: int) -> dict[str, float]:
    listing = tmp / f"files-{len(files)}.txt"
    listing.write_text("\n".join(str(p) for p in files))
    cmd = [sys.executable, __file__, "--child", str(listing), "--batch", str(batch)]
    # the streaming bound itself: no chips kept in memory (facerobust.data.chip_memory adds up
    # to its budget, 1 GiB by default, on top)
    env = {**os.environ, "FACEROBUST_CHIP_MEMORY_MB": "0"}
    proc = subprocess.run(cmd + (["--eager"] if eager else []), capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        raise SystemExit(f"measurement failed:\n{proc.stderr[-3000:]}")
    row: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    label = "eager (all chips in memory)" if eager else "streamed"
    print(f"{label:28s} n={int(row['n']):6d}: peak RSS {row['rss_mb']:7.0f} MB (model loaded: "
          f"{row['rss_model_mb']:.0f} MB; embeddings {row['embedding_mb']:.1f} MB) in "
          f"{row['seconds']:.0f} s", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[1000, 10000])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--eager", action="store_true", help="also measure the eager path")
    parser.add_argument("--real", action="store_true", help="LFW photos with cached chips")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.eager, args.batch)
        return
    small, big = args.sizes
    with tempfile.TemporaryDirectory(prefix="stream-memory-") as name:
        tmp = Path(name)
        if args.real:
            files = cached_lfw(big)
            print(f"chips: {big} LFW photos with cached chips (real)")
        else:
            from facerobust import paths as fr_paths

            weights = fr_paths.cache_subdir("weights")  # the real model, a synthetic cache
            os.environ["FACEROBUST_CACHE"] = str(tmp / "cache")
            (tmp / "cache").mkdir()
            (tmp / "cache" / "weights").symlink_to(weights)
            tic = time.perf_counter()
            files = synthetic(tmp / "sources", big)
            print(f"chips: SYNTHETIC -- {big} generated chip-cache entries in the real format "
                  f"(not faces), written in {time.perf_counter() - tic:.0f} s")
        rows = {n: measure(files[:n], tmp, False, args.batch) for n in (small, big)}
        if args.eager:
            for n in (small, big):
                measure(files[:n], tmp, True, args.batch)
    a, b = rows[small]["rss_mb"], rows[big]["rss_mb"]
    print(f"RESULT rss_{_size(small)}_mb={a:.0f} rss_{_size(big)}_mb={b:.0f} ratio={b / a:.2f}")


def _size(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


if __name__ == "__main__":
    main()
