"""Clean (no attack) LFW verification accuracy of one model.

Pipeline: LFW pairs -> :func:`facerobust.data.chips.load_chips` (dlib HOG + 5 landmarks +
canonical chip, cached) -> ``model(chips)`` raw descriptors -> ``model.distance`` per pair ->
:func:`facerobust.eval.metrics.verification_metrics` (10-fold protocol). Pairs with an image
that could not be aligned are excluded and counted in ``n_pairs_excluded``.

>>> from facerobust import models
>>> from facerobust.eval.clean import evaluate_clean
>>> res = evaluate_clean(models.load("dlib-resnet"), "/data/lfw-gray")   # doctest: +SKIP
>>> round(res.accuracy, 4)                                               # doctest: +SKIP
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facerobust.data.lfw import LFWPairs, Pair

CHUNK_IMAGES = 512  # chips held in memory at once (512 x 270 KB)


@dataclass
class CleanResult:
    model: str
    dataset: str
    pairs_file: str
    accuracy: float
    accuracy_std: float
    auc: float
    eer: float
    tar_at_far: float
    far: float
    threshold: float  # distance threshold at ``far``
    best_threshold: float
    model_threshold: float
    accuracy_at_model_threshold: float
    n_pairs: int  # pairs evaluated
    n_pairs_excluded: int  # pairs dropped because an image was skipped
    n_images: int
    protocol: str
    seconds: float
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def select_pairs(pairs: list[Pair], limit: int | None) -> list[Pair]:
    """The first ``limit`` pairs in round-robin over (fold, same) groups, so a small limit
    still covers every fold with matched and mismatched pairs. ``None`` keeps all."""
    if limit is None:
        return list(pairs)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 2:
        raise ValueError(f"limit_pairs must be an integer >= 2, got {limit!r}")
    rank: dict[tuple[int, bool], int] = {}
    keyed = []
    for i, p in enumerate(pairs):
        g = (p.fold, p.same)
        keyed.append((rank.get(g, 0), p.fold, not p.same, i))
        rank[g] = rank.get(g, 0) + 1
    keyed.sort()
    chosen = sorted(k[3] for k in keyed[:limit])
    return [pairs[i] for i in chosen]


@torch.no_grad()
def embed_paths(model: Any, paths: list[Path], *, batch_size: int = 32, progress: bool = True,
                device: str | torch.device | None = None
                ) -> tuple[dict[Path, torch.Tensor], list[dict[str, str]]]:
    """Raw descriptors of every alignable file, plus the skipped files with reasons."""
    from facerobust.data.chips import load_chips

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dev = torch.device(device) if device is not None else next(
        (p.device for p in model.parameters()), torch.device("cpu"))
    out: dict[Path, torch.Tensor] = {}
    skipped: list[dict[str, str]] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(paths), desc="aligning + embedding", unit="img", file=sys.stderr)
    for start in range(0, len(paths), CHUNK_IMAGES):
        chunk = paths[start: start + CHUNK_IMAGES]
        cs = load_chips(chunk, cache=True)
        skipped.extend(s.to_dict() for s in cs.skipped)
        for b in range(0, len(cs), batch_size):
            x = cs.chips[b: b + batch_size].to(dev)
            desc = model(x).detach().float().cpu()
            for j, path in enumerate(cs.paths[b: b + batch_size]):
                out[path] = desc[j]
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return out, skipped


def evaluate_clean(model: Any, dataset_root: Path | str, *, batch_size: int = 32,
                   progress: bool = True, limit_pairs: int | None = None,
                   pairs_file: str = "pairs.txt", far: float = 1e-3,
                   device: str | torch.device | None = None) -> CleanResult:
    """LFW verification metrics of ``model`` (a FaceModel or a registered model name)."""
    from facerobust.eval.metrics import verification_metrics

    if isinstance(model, str):
        from facerobust import models

        model = models.load(model, device=device)
    t0 = time.perf_counter()
    lfw = LFWPairs(dataset_root, pairs_file=pairs_file)
    chosen = select_pairs(lfw.pairs, limit_pairs)
    paths = list(dict.fromkeys(p for pair in chosen for p in (pair.path_a, pair.path_b)))
    was_training = model.training
    model.eval()
    try:
        desc, skipped = embed_paths(model, paths, batch_size=batch_size, progress=progress,
                                    device=device)
    finally:
        model.train(was_training)
    kept = [p for p in chosen if p.path_a in desc and p.path_b in desc]
    if not kept:
        raise ValueError(f"no pair of {lfw.pairs_path} could be evaluated: all "
                         f"{len(chosen)} pairs have an image without a detectable face")
    a = torch.stack([desc[p.path_a] for p in kept])
    b = torch.stack([desc[p.path_b] for p in kept])
    dist = model.distance(a, b).numpy().astype(np.float64)
    same = np.array([p.same for p in kept])
    folds = np.array([p.fold for p in kept])
    m = verification_metrics(dist, same, folds, far=far)
    thr = float(model.threshold)
    return CleanResult(
        model=str(getattr(model, "name", type(model).__name__)),
        dataset=str(Path(dataset_root)), pairs_file=lfw.pairs_path.name,
        accuracy=m.accuracy, accuracy_std=m.accuracy_std, auc=m.auc, eer=m.eer,
        tar_at_far=m.tar_at_far, far=m.far, threshold=m.threshold_at_far,
        best_threshold=m.best_threshold, model_threshold=thr,
        accuracy_at_model_threshold=float(((dist <= thr) == same).mean()),
        n_pairs=len(kept), n_pairs_excluded=len(chosen) - len(kept), n_images=len(paths),
        protocol=m.protocol, seconds=time.perf_counter() - t0, skipped=skipped)
