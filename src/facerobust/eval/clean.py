"""Clean (no attack) verification figures: the one computation behind ``eval-clean`` and the
audit's clean units.

Pipeline: pairs (:func:`facerobust.eval.tasks.select_pairs`) -> aligned chips -> descriptors
(:func:`facerobust.eval.tasks.embed_paths`) -> ``model.distance`` per pair ->
:func:`clean_figures` (10-fold protocol, TAR@FAR, operating threshold, ROC). Pairs with an
image that could not be aligned are excluded and counted.

>>> from facerobust import models
>>> from facerobust.eval.clean import evaluate_clean
>>> res = evaluate_clean(models.load("dlib-resnet"), "/data/lfw-gray")   # doctest: +SKIP
>>> res.figures.accuracy, res.figures.correct.text()                     # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facerobust import models
from facerobust.core.stats import Rate
from facerobust.data.sources import open_dataset
from facerobust.eval.metrics import roc_points, verification_metrics
from facerobust.eval.protocol import FOLDS, generate_pairs
from facerobust.eval.results import CleanUnit, Unit
from facerobust.eval.tasks import embed_paths, select_pairs
from facerobust.models.base import accepts

ROC_POINTS = 300


def clean_figures(name: str, model: nn.Module, distances: np.ndarray, same: np.ndarray,
                  folds: np.ndarray, *, far: float = 1e-3,
                  identification_top1: Rate | None = None) -> CleanUnit:
    """Every clean verification figure of ``model`` from its pair ``distances``."""

    m = verification_metrics(distances, same, folds, far=far)
    roc = roc_points(distances, same, max_points=ROC_POINTS)
    accept = accepts(distances, float(model.threshold))  # type: ignore[arg-type]
    return CleanUnit(
        model=name, protocol=m.protocol, n_pairs=m.n_pairs, n_same=m.n_same, n_diff=m.n_diff,
        n_folds=m.n_folds, accuracy=m.accuracy, accuracy_std=m.accuracy_std,
        correct=Rate(m.n_correct, m.n_pairs), auc=m.auc, eer=m.eer, far=m.far,
        tar_at_far=Rate(m.n_accepted_at_far, m.n_same), threshold_at_far=m.threshold_at_far,
        best_threshold=m.best_threshold, operating_threshold=float(model.threshold),  # type: ignore[arg-type]
        genuine_accept=Rate.of(accept[same]), impostor_reject=Rate.of(~accept[~same]),
        correct_at_operating_threshold=Rate.of(accept == same),
        roc={"fpr": roc.far, "tpr": roc.tar}, identification_top1=identification_top1)


@dataclass(frozen=True)
class CleanEvaluation(Unit):
    """``eval-clean``'s result: the figures plus where they came from."""

    figures: CleanUnit
    dataset: str
    layout: str
    pairs_file: str  # the protocol file read, or "generated"
    n_pairs_excluded: int  # pairs dropped because an image was skipped
    n_images: int
    seconds: float
    skipped: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The flat figures scripts read: accuracy, n_pairs, skipped (count), ..."""
        f = self.figures
        return {"model": f.model, "dataset": self.dataset, "layout": self.layout,
                "accuracy": f.accuracy, "accuracy_std": f.accuracy_std, "auc": f.auc,
                "eer": f.eer, "tar_at_far": f.tar_at_far.rate, "n_pairs": f.n_pairs,
                "n_pairs_excluded": self.n_pairs_excluded, "skipped": len(self.skipped)}


def protocol_pairs(dataset: Any, limit_pairs: int | None, seed: int) -> tuple[list[Any], str]:
    """The dataset's own pairs (first ``limit_pairs`` spread over folds and classes), or a
    generated 10-fold protocol when it has none."""
    if dataset.pairs is not None:
        return select_pairs(dataset.pairs, limit_pairs), Path(dataset.pairs_file).name

    per_fold = 300 if limit_pairs is None else max(1, -(-limit_pairs // (2 * FOLDS)))
    return generate_pairs(dataset.people, per_fold=per_fold, seed=seed), "generated"


def evaluate_clean(model: Any, dataset_root: Path | str, *, batch_size: int = 32,
                   progress: bool = True, limit_pairs: int | None = None,
                   pairs_file: str = "pairs.txt", far: float = 1e-3,
                   device: str | torch.device | None = None,
                   name: str | None = None, layout: str = "auto", detector: str = "hog+cnn",
                   seed: int = 0) -> CleanEvaluation:
    """Clean verification figures of ``model`` (a FaceModel or a registered model name) on
    the dataset at ``dataset_root`` (any layout; a 10-fold protocol is generated with
    ``seed`` when it has no pairs file); ``name`` labels the figures."""

    if isinstance(model, str):

        name = name or model
        model = models.load(model, device=None if device is None else str(device))
    t0 = time.perf_counter()
    root = Path(dataset_root)
    own = root / pairs_file if pairs_file != "pairs.txt" else None
    dataset = open_dataset(root, layout=layout, pairs_file=own)
    chosen, source = protocol_pairs(dataset, limit_pairs, seed)
    paths = list(dict.fromkeys(p for pair in chosen for p in (pair.path_a, pair.path_b)))
    desc, skipped = embed_paths(model, paths, batch_size=batch_size, progress=progress,
                                detector=detector)
    kept = [p for p in chosen if p.path_a in desc and p.path_b in desc]
    if not kept:
        raise ValueError(f"no pair of {root} ({source}) could be evaluated: all "
                         f"{len(chosen)} pairs have an image without a detectable face")
    a = torch.stack([desc[p.path_a] for p in kept])
    b = torch.stack([desc[p.path_b] for p in kept])
    dist = model.distance(a, b).numpy().astype(np.float64)
    name = name or str(getattr(model, "name", type(model).__name__))
    figures = clean_figures(name, model, dist, np.array([p.same for p in kept]),
                            np.array([p.fold for p in kept]), far=far)
    seconds = time.perf_counter() - t0
    return CleanEvaluation(figures=replace(figures, seconds=seconds),
                           dataset=str(root), layout=dataset.layout, pairs_file=source,
                           n_pairs_excluded=len(chosen) - len(kept), n_images=len(paths),
                           seconds=seconds, skipped=skipped)
