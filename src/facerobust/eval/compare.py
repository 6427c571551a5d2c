"""Face-similarity comparison: several models side by side on the same verification pairs.

For each model: its metric, the LFW-protocol accuracy (each fold's threshold chosen on the
*other* folds), the mean and variance of genuine and impostor distances, and the FGSM error
rate at each budget on a spread subset of the pairs. An attacked pair is judged with its
fold's training-fold threshold: FGSM perturbs the first image to push a genuine pair apart
(dodging) or pull an impostor pair together (impersonation); the error rate counts pairs the
model then decides wrongly (pairs already wrong before the attack count as errors, as in the
founding study's table).

Everything reuses the experiment core: the one study dataset opener and pair sample
(:mod:`facerobust.eval.datasource`: any layout, the dataset's pairs or a generated protocol),
:func:`~facerobust.eval.tasks.embed`, the attack registry.

>>> res = compare_models(["dlib-resnet", "faceres", "mobileface"], "/data/lfw-gray",
...                      limit_pairs=600, n_attack=200)             # doctest: +SKIP
>>> print(format_comparison(res))                                   # doctest: +SKIP
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Mapping, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from facerobust import models as zoo
from facerobust.attacks import LINF, Dodging, Impersonation
from facerobust.attacks.registry import build_attack
from facerobust.core.stats import Rate
from facerobust.data.sources import Dataset
from facerobust.eval.datasource import (
    DataSource,
    VerificationSample,
    as_dataset,
    verification_sample,
)
from facerobust.eval.metrics import best_threshold, verification_metrics
from facerobust.eval.results import Unit
from facerobust.eval.results_file import KindUnit
from facerobust.eval.tasks import embed, spread

STUDY_EPSILONS = (0.01, 0.015, 0.02)  # the founding study's budgets, [0, 1] units
GRID_EPSILONS = (1 / 255, 2 / 255, 4 / 255, 8 / 255)


@dataclass(frozen=True)
class FgsmPoint(Unit):
    eps: float
    error: Rate  # attacked pairs decided wrongly after FGSM at ``eps``


@dataclass(frozen=True)
class ModelComparison(Unit):
    model: str
    metric: str
    n_pairs: int
    accuracy: float  # mean over folds, thresholds fit on the other folds
    accuracy_std: float
    correct: Rate  # pooled held-out decisions
    fold_thresholds: list[float]
    genuine_mean: float
    genuine_var: float
    impostor_mean: float
    impostor_var: float
    clean_error: Rate  # on the attacked subset, before the attack
    fgsm: list[FgsmPoint]
    seconds: float


@dataclass(frozen=True)
class Comparison(KindUnit):
    """``facerobust compare``'s result (kind ``comparison``)."""

    KIND: ClassVar[str] = "comparison"

    dataset: str
    pairs_file: str
    n_pairs: int
    n_pairs_excluded: int
    n_attacked: int
    seed: int
    models: list[ModelComparison]


def fold_thresholds(distances: np.ndarray, same: np.ndarray, folds: np.ndarray
                    ) -> dict[int, float]:
    """Per fold, the accuracy-maximising threshold on the *other* folds (training folds); with
    a single fold, the best threshold on it (no held-out data exists)."""

    ids = sorted(int(f) for f in np.unique(folds))
    out = {}
    for f in ids:
        train = folds != f if len(ids) > 1 else np.ones_like(same, dtype=bool)
        if same[train].all() or not same[train].any():
            raise ValueError(f"training folds of fold {f} lack matched or mismatched pairs")
        out[f] = best_threshold(distances[train], same[train])[0]
    return out


def fgsm_errors(model: nn.Module, xa: torch.Tensor, ref: torch.Tensor, same: np.ndarray,
                thresholds: np.ndarray, epsilons: Sequence[float], batch_size: int = 32
                ) -> tuple[np.ndarray, np.ndarray]:
    """Clean error flags (N,) and error flags after FGSM (n_eps, N): dodging on genuine pairs,
    impersonation on impostor pairs, each pair at its own threshold (one criterion per kind
    with per-row thresholds, in batches of ``batch_size``: every batch has one of few shapes,
    where a batch per fold threshold made a new one per group, and oneDNN keeps kernels per
    shape -- ~100 MB per shape for mobilefacenet, 11 GB for five models on 500 pairs)."""

    metric = str(getattr(model, "metric", "euclidean"))
    clean = np.zeros(len(xa), dtype=bool)
    after = np.zeros((len(epsilons), len(xa)), dtype=bool)
    thr = torch.as_tensor(thresholds, dtype=torch.float64)
    for genuine in (True, False):
        kind = Dodging if genuine else Impersonation
        rows_all = np.flatnonzero(same == genuine)
        for lo in range(0, len(rows_all), batch_size):
            rows = rows_all[lo:lo + batch_size]
            idx = torch.as_tensor(rows)
            crit = kind(ref[idx], thr[idx], metric)  # type: ignore[arg-type]
            with torch.no_grad():
                clean[rows] = crit.is_adversarial(model(xa[idx])).cpu().numpy()
            res = build_attack("fgsm", LINF)(model, xa[idx], crit, epsilons=list(epsilons))
            after[:, rows] = res.success.numpy()
    return clean, after


def compare_one(name: str, model: nn.Module, chips: torch.Tensor, pairs: Any,
                attacked: np.ndarray, epsilons: Sequence[float], batch_size: int
                ) -> ModelComparison:
    """Every comparison figure of one model on the shared pair sample."""

    t0 = time.perf_counter()
    model.eval().requires_grad_(False)
    emb = embed(model, chips, batch_size)
    a, b = torch.as_tensor(pairs.a), torch.as_tensor(pairs.b)
    d = model.distance(emb[a], emb[b]).numpy().astype(np.float64)  # type: ignore[operator]
    m = verification_metrics(d, pairs.same, pairs.fold)
    thr = fold_thresholds(d, pairs.same, pairs.fold)
    thr_pair = np.array([thr[int(f)] for f in pairs.fold])
    rows = torch.as_tensor(attacked)
    clean, after = fgsm_errors(model, chips[a[rows]], emb[b[rows]], pairs.same[attacked],
                               thr_pair[attacked], epsilons, batch_size)
    gen, imp = d[pairs.same], d[~pairs.same]
    return ModelComparison(
        model=name, metric=str(getattr(model, "metric", "?")), n_pairs=len(d),
        accuracy=m.accuracy, accuracy_std=m.accuracy_std, correct=Rate(m.n_correct, m.n_pairs),
        fold_thresholds=[thr[k] for k in sorted(thr)], genuine_mean=float(gen.mean()),
        genuine_var=float(gen.var(ddof=1)) if len(gen) > 1 else 0.0,
        impostor_mean=float(imp.mean()),
        impostor_var=float(imp.var(ddof=1)) if len(imp) > 1 else 0.0,
        clean_error=Rate.of(clean),
        fgsm=[FgsmPoint(float(e), Rate.of(after[i])) for i, e in enumerate(epsilons)],
        seconds=time.perf_counter() - t0)


def compare_models(models: Sequence[str] | Mapping[str, nn.Module],
                   dataset: Dataset | DataSource | Path | str, *,
                   limit_pairs: int | None = 600, n_attack: int = 200,
                   epsilons: Sequence[float] = STUDY_EPSILONS + GRID_EPSILONS,
                   batch_size: int = 32, seed: int = 0, progress: bool = True) -> Comparison:
    """Compare ``models`` (registered names, zoo student paths, or name -> module) on the same
    pairs of ``dataset`` (any layout; a folder is opened with its layout detected); FGSM on
    ``n_attack`` pairs spread over folds."""

    check_compare(models, n_attack, epsilons)
    # cheap checks (dataset, model names and weights) before alignment
    opened = as_dataset(dataset)
    chosen_models = dict(models) if isinstance(models, Mapping) \
        else {n: zoo.load(n) for n in models}
    sample = verification_sample(opened, limit_pairs=limit_pairs, seed=seed,
                                 progress=progress)
    return compare_on(chosen_models, sample, n_attack=n_attack, epsilons=epsilons,
                      batch_size=batch_size, seed=seed, progress=progress)


def check_compare(models: Sized, n_attack: int, epsilons: Sequence[float]) -> None:
    if len(models) < 1:
        raise ValueError("compare needs at least one model")
    if n_attack < 1:
        raise ValueError(f"n_attack must be >= 1, got {n_attack}")
    if not epsilons or any(not 0 < e <= 1 for e in epsilons):
        raise ValueError(f"epsilons must be in (0, 1], got {list(epsilons)}")


def compare_on(loaded: Mapping[str, nn.Module], sample: VerificationSample, *, n_attack: int,
               epsilons: Sequence[float] = STUDY_EPSILONS + GRID_EPSILONS,
               batch_size: int = 32, seed: int = 0, progress: bool = True) -> Comparison:
    """:func:`compare_models` on an already loaded verification sample (its chips shared
    with the caller, e.g. the distill study's transfer attack)."""
    check_compare(loaded, n_attack, epsilons)
    pairs = sample.pairs
    eps = sorted(set(epsilons))
    attacked = spread(np.arange(len(pairs)), n_attack)
    rows = []
    for name, model in loaded.items():
        if progress:
            print(f"compare: {name} ({len(pairs)} pairs, FGSM on {len(attacked)})",
                  file=sys.stderr)
        rows.append(compare_one(name, model, sample.chipset.chips, pairs, attacked, eps,
                                batch_size))
    return Comparison(dataset=str(sample.dataset.root), pairs_file=sample.source,
                      n_pairs=len(pairs), n_pairs_excluded=sample.dropped,
                      n_attacked=len(attacked), seed=seed, models=rows)


def format_comparison(res: Comparison) -> str:
    """The similarity table and the FGSM error table as text."""
    head = (f"{'model':<16} {'metric':<9} {'accuracy (k-fold)':<26} {'genuine mean/var':<20} "
            f"{'impostor mean/var':<20}")
    lines = [f"{res.dataset} ({res.pairs_file}): {res.n_pairs} pairs, thresholds chosen on the "
             f"training folds; FGSM on {res.n_attacked} pairs", head]
    for m in res.models:
        acc = f"{100 * m.accuracy:.2f}% +/- {100 * m.accuracy_std:.2f}"
        lines.append(f"{m.model:<16} {m.metric:<9} {acc:<26} "
                     f"{m.genuine_mean:.3f}/{m.genuine_var:.4f}{'':<7} "
                     f"{m.impostor_mean:.3f}/{m.impostor_var:.4f}")
    lines.append("FGSM error rate (pairs decided wrongly; eps in [0,1] units = x/255):")
    for m in res.models:
        lines.append(f"  {m.model}: clean {m.clean_error.text()}")
        lines.extend(f"    eps {p.eps:.4f} ({255 * p.eps:.2f}/255): {p.error.text()}"
                     for p in m.fgsm)
    return "\n".join(lines)


def comparison_figure(res: Comparison, path: Path | None = None) -> bytes:
    """PNG bytes (also written to ``path`` when given). Left: genuine/impostor distance
    histograms per model (each in its own metric, scaled to its mean training-fold threshold);
    right: FGSM error rate vs epsilon with 95% CIs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for i, m in enumerate(res.models):
        colour = f"C{i}"
        thr = float(np.mean(m.fold_thresholds))
        for mean, var, style in ((m.genuine_mean, m.genuine_var, "-"),
                                 (m.impostor_mean, m.impostor_var, "--")):
            xs = np.linspace(0, 2.5, 200)
            sd = max(np.sqrt(var), 1e-6) / thr
            ys = np.exp(-0.5 * ((xs - mean / thr) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
            ax1.plot(xs, ys, style, color=colour,
                     label=f"{m.model} {'genuine' if style == '-' else 'impostor'}")
        eps = [0.0] + [p.eps * 255 for p in m.fgsm]
        rates = [m.clean_error] + [p.error for p in m.fgsm]
        mid = [100 * r.rate for r in rates]
        err = [[100 * (r.rate - r.ci95[0]) for r in rates],
               [100 * (r.ci95[1] - r.rate) for r in rates]]
        ax2.errorbar(eps, mid, yerr=err, capsize=3, marker="o", color=colour, label=m.model)
    ax1.axvline(1.0, color="grey", lw=0.8)
    ax1.set(xlabel="distance / threshold (normal fit)", ylabel="density",
            title="genuine vs impostor distances")
    ax1.legend(fontsize=7)
    ax2.set(xlabel="FGSM epsilon (x/255, Linf)", ylabel="error rate (%)", ylim=(0, 100),
            title=f"FGSM error rate ({res.n_attacked} pairs, 95% CI)")
    ax2.legend(fontsize=8)

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    if path is not None:
        path.write_bytes(buf.getvalue())
    return buf.getvalue()
