"""Clean (no attack) verification figures: the one computation behind ``eval-clean`` and the
audit's clean units.

Pipeline: pairs (:func:`facerobust.eval.tasks.select_pairs`) -> aligned chips -> descriptors
(:func:`facerobust.eval.tasks.embed_paths`) -> ``model.distance`` per pair ->
:func:`clean_figures` (10-fold protocol, TAR@FAR, operating threshold, ROC). Pairs with an
image that could not be aligned are excluded and counted.

>>> from facerobust import models
>>> from facerobust.eval.clean import CleanOptions, evaluate_clean
>>> res = evaluate_clean(models.load("dlib-resnet"), "/data/lfw-gray",
...                      CleanOptions(limit_pairs=600))                     # doctest: +SKIP
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
from facerobust.data.capture import check_detector
from facerobust.data.cfp import check_protocol, held_out_pairs, protocol_label
from facerobust.data.sources import LAYOUTS, open_dataset
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


def protocol_pairs(dataset: Any, limit_pairs: int | None, seed: int, *,
                   held_out: bool = False) -> tuple[list[Any], str]:
    """The dataset's own pairs (first ``limit_pairs`` spread over folds and classes), or a
    generated 10-fold protocol when it has none; ``held_out``: only CFP's pairs of its
    held-out people (:func:`facerobust.data.cfp.held_out_pairs`)."""
    if held_out and dataset.layout != "cfp":
        raise ValueError(f"held_out applies to CFP only (its people also in LFW), but "
                         f"{dataset.root} has the {dataset.layout} layout")
    if dataset.pairs is not None:
        name = Path(dataset.pairs_file).name
        label = protocol_label(name) if dataset.layout == "cfp" else name
        pairs = dataset.pairs
        if held_out:
            pairs, label = held_out_pairs(dataset.root, pairs), f"{label} held-out people"
        return select_pairs(pairs, limit_pairs), label

    per_fold = 300 if limit_pairs is None else max(1, -(-limit_pairs // (2 * FOLDS)))
    return generate_pairs(dataset.people, per_fold=per_fold, seed=seed), "generated"


@dataclass(frozen=True)
class CleanOptions:
    """Which pairs and how they are measured: at most ``limit_pairs`` of the dataset's own
    pairs (``pairs_file`` beside it; a ``seed``-ed 10-fold protocol when it has none), read
    with ``layout``, faces found by ``detector``, TAR at ``far``, ``batch_size`` chips per
    forward pass. ``protocol`` picks CFP's official pairs (``ff`` frontal-frontal, the
    default, or ``fp`` frontal-profile); it is refused on other datasets. ``held_out`` keeps
    only CFP's pairs of the people no facerobust training uses (those also in LFW), the fair
    figure for a model trained on CFP."""

    limit_pairs: int | None = None
    pairs_file: str = "pairs.txt"
    protocol: str | None = None
    layout: str = "auto"
    detector: str = "hog+cnn"
    far: float = 1e-3
    batch_size: int = 32
    seed: int = 0
    held_out: bool = False

    def __post_init__(self) -> None:
        lim = self.limit_pairs
        if lim is not None and (isinstance(lim, bool) or not isinstance(lim, int) or lim < 1):
            raise ValueError(f"limit_pairs must be an integer >= 1 or None, got {lim!r}")
        if not self.pairs_file:
            raise ValueError("pairs_file is empty")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got "
                             f"{self.layout!r}")
        check_detector(self.detector)
        if self.protocol is not None:
            check_protocol(self.protocol)
        if not 0 < self.far < 1:
            raise ValueError(f"far must be in (0, 1), got {self.far!r}")
        b = self.batch_size
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {b!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if not isinstance(self.held_out, bool):
            raise TypeError(f"held_out must be True or False, got {self.held_out!r}")


def evaluate_clean(model: Any, dataset_root: Path | str, options: CleanOptions | None = None,
                   *, name: str | None = None, device: str | torch.device | None = None,
                   progress: bool = True,
                   descriptors: dict[Path, torch.Tensor] | None = None) -> CleanEvaluation:
    """Clean verification figures of ``model`` (a FaceModel or a registered model name, loaded
    on ``device``) on the dataset at ``dataset_root`` (any layout; a 10-fold protocol is
    generated when it has no pairs file); ``name`` labels the figures. ``descriptors``, when
    given, is read and filled (path -> descriptor of this model), so a second protocol on the
    same photos (CFP's FF then FP) embeds only the photos the first did not."""

    o = options or CleanOptions()
    if isinstance(model, str):

        name = name or model
        model = models.load(model, device=None if device is None else str(device))
    t0 = time.perf_counter()
    root = Path(dataset_root)
    own = root / o.pairs_file if o.pairs_file != "pairs.txt" else None
    dataset = open_dataset(root, layout=o.layout, pairs_file=own, protocol=o.protocol)
    chosen, source = protocol_pairs(dataset, o.limit_pairs, o.seed, held_out=o.held_out)
    paths = list(dict.fromkeys(p for pair in chosen for p in (pair.path_a, pair.path_b)))
    desc = descriptors if descriptors is not None else {}
    todo = [p for p in paths if p not in desc]
    new, skipped = embed_paths(model, todo, batch_size=o.batch_size, progress=progress,
                               detector=o.detector)
    desc.update(new)
    kept = [p for p in chosen if p.path_a in desc and p.path_b in desc]
    if not kept:
        raise ValueError(f"no pair of {root} ({source}) could be evaluated: all "
                         f"{len(chosen)} pairs have an image without a detectable face")
    a = torch.stack([desc[p.path_a] for p in kept])
    b = torch.stack([desc[p.path_b] for p in kept])
    dist = model.distance(a, b).numpy().astype(np.float64)
    name = name or str(getattr(model, "name", type(model).__name__))
    figures = clean_figures(name, model, dist, np.array([p.same for p in kept]),
                            np.array([p.fold for p in kept]), far=o.far)
    seconds = time.perf_counter() - t0
    return CleanEvaluation(figures=replace(figures, seconds=seconds),
                           dataset=str(root), layout=dataset.layout, pairs_file=source,
                           n_pairs_excluded=len(chosen) - len(kept), n_images=len(paths),
                           seconds=seconds, skipped=skipped)
