"""Verification and identification metrics (pure NumPy / scikit-learn).

Convention: a pair is accepted as "same person" when ``distance <= threshold``.

* :func:`verification_metrics` -- the LFW protocol: for each fold, the threshold that maximises
  accuracy on the *other* folds is applied to the held-out fold; accuracy is the mean over
  folds (``accuracy_std`` is the sample standard deviation over folds). Also ROC AUC, equal
  error rate, TAR at a fixed FAR with its threshold, and the best global threshold.
* :func:`roc_points` -- FAR/TAR/threshold arrays for plotting.
* :func:`identification_top1` -- closed-set rank-1 identification rate.

>>> import numpy as np
>>> m = verification_metrics(np.r_[0.2, 0.3, 0.9, 1.0], np.r_[True, True, False, False],
...                          np.r_[0, 1, 0, 1])
>>> m.accuracy, m.eer
(1.0, 0.0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from facerobust.models.base import accepts


@dataclass(frozen=True)
class VerificationMetrics:
    accuracy: float  # k-fold accuracy (threshold fit on the other folds); see ``protocol``
    accuracy_std: float
    auc: float
    eer: float
    eer_threshold: float
    tar_at_far: float
    far: float  # the requested false-accept rate
    threshold_at_far: float
    best_threshold: float  # maximises accuracy on all pairs
    best_accuracy: float
    n_pairs: int
    n_same: int
    n_diff: int
    n_folds: int
    protocol: str  # "k-fold" or "best-threshold" (a single fold cannot be cross-validated)
    n_correct: int = 0  # held-out decisions that were right, pooled over folds
    n_accepted_at_far: int = 0  # genuine pairs accepted at ``threshold_at_far``

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RocPoints:
    far: list[float]
    tar: list[float]
    # distance thresholds (accept when distance <= threshold); None where infinite
    thresholds: list[float | None]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(distances: Any, same: Any) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(distances, dtype=np.float64).reshape(-1)
    s = np.asarray(same).reshape(-1)
    if d.shape != s.shape:
        raise ValueError(f"distances and same differ in length: {d.size} vs {s.size}")
    if s.dtype != bool:
        if not np.isin(s, (0, 1)).all():
            raise ValueError("same must be boolean (or 0/1)")
        s = s.astype(bool)
    if not np.isfinite(d).all():
        raise ValueError("distances contain NaN or infinity")
    if s.all() or not s.any():
        raise ValueError(f"need both same and different pairs, got {int(s.sum())} same of "
                         f"{s.size}")
    return d, s


def best_threshold(distances: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy) maximising accuracy of ``distance <= threshold``.

    Thresholds are midpoints between consecutive distinct distances (plus one below the
    minimum and one above the maximum); the smallest best threshold wins ties.
    """
    order = np.argsort(distances, kind="stable")
    d, s = distances[order], same[order]
    n = d.size
    # accepting the first i pairs (i = 0..n): correct = same among them + diff among the rest
    same_cum = np.concatenate(([0], np.cumsum(s)))
    diff_total = n - s.sum()
    diff_cum = np.concatenate(([0], np.cumsum(~s)))
    correct = same_cum + (diff_total - diff_cum)
    valid = np.ones(n + 1, dtype=bool)
    valid[1:n] = d[1:] > d[:-1]  # cannot split between equal distances
    correct = np.where(valid, correct, -1)
    i = int(np.argmax(correct))
    if i == 0:
        thr = d[0] - 1e-6 * max(1.0, abs(d[0]))
    elif i == n:
        thr = d[-1]
    else:
        thr = (d[i - 1] + d[i]) / 2.0
    return float(thr), float(correct[i] / n)


def _roc(d: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:

    fpr, tpr, thr = roc_curve(s.astype(int), -d, drop_intermediate=False)
    return fpr, tpr, -thr  # distance thresholds; the first is +inf (accept nothing)


def roc_points(distances: Any, same: Any, *, max_points: int | None = None) -> RocPoints:
    """ROC curve as FAR (false accepts / impostor pairs) vs TAR, with distance thresholds."""
    d, s = _check(distances, same)
    fpr, tpr, thr = _roc(d, s)
    keep = np.arange(fpr.size)
    if max_points is not None and fpr.size > max_points:
        if max_points < 2:
            raise ValueError(f"max_points must be >= 2, got {max_points}")
        keep = np.unique(np.linspace(0, fpr.size - 1, max_points).round().astype(int))
    thr = np.where(np.isfinite(thr), thr, np.nan)
    return RocPoints(far=fpr[keep].tolist(), tar=tpr[keep].tolist(),
                     thresholds=[None if np.isnan(t) else float(t) for t in thr[keep]])


def _eer(fpr: np.ndarray, tpr: np.ndarray, thr: np.ndarray) -> tuple[float, float]:
    fnr = 1.0 - tpr
    diff = fpr - fnr  # increasing from -1 to 1 along the curve
    k = int(np.argmax(diff >= 0))
    if k == 0 or diff[k] == 0:
        t = thr[k] if np.isfinite(thr[k]) else thr[k + 1]
        return float(fpr[k]), float(t)
    # linear interpolation between points k-1 and k
    w = -diff[k - 1] / (diff[k] - diff[k - 1])
    eer = fpr[k - 1] + w * (fpr[k] - fpr[k - 1])
    t0 = thr[k - 1] if np.isfinite(thr[k - 1]) else thr[k]
    return float(eer), float(t0 + w * (thr[k] - t0))


def verification_metrics(distances: Any, same: Any, folds: Any, *,
                         far: float = 1e-3) -> VerificationMetrics:
    """All verification metrics for pair ``distances`` (lower = more alike)."""
    d, s = _check(distances, same)
    f = np.asarray(folds).reshape(-1)
    if f.shape != d.shape:
        raise ValueError(f"folds and distances differ in length: {f.size} vs {d.size}")
    if not 0 < far < 1:
        raise ValueError(f"far must lie in (0, 1), got {far}")
    fold_ids = np.unique(f)
    accs: list[float] = []
    correct = 0
    for k in fold_ids:
        test = f == k
        train = ~test
        if len(fold_ids) < 2 or s[train].all() or not s[train].any():
            accs = []
            break
        fold_thr, _ = best_threshold(d[train], s[train])
        right = accepts(d[test], fold_thr) == s[test]
        accs.append(float(right.mean()))
        correct += int(right.sum())
    g_thr, g_acc = best_threshold(d, s)
    if accs:
        protocol = "k-fold"
        acc = float(np.mean(accs))
        acc_std = float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0
    else:
        protocol, acc, acc_std = "best-threshold", g_acc, 0.0
        correct = int(round(g_acc * d.size))

    auc = float(roc_auc_score(s.astype(int), -d))
    fpr, tpr, thr = _roc(d, s)
    eer, eer_thr = _eer(fpr, tpr, thr)
    tar, thr_far, accepted = _tar_at_far(d, s, far, (fpr, tpr, thr))
    return VerificationMetrics(
        accuracy=acc, accuracy_std=acc_std, auc=auc, eer=eer, eer_threshold=eer_thr,
        tar_at_far=tar, far=float(far), threshold_at_far=thr_far,
        best_threshold=g_thr, best_accuracy=g_acc, n_pairs=int(d.size), n_same=int(s.sum()),
        n_diff=int((~s).sum()), n_folds=int(len(fold_ids)), protocol=protocol,
        n_correct=correct, n_accepted_at_far=accepted)


def _tar_at_far(d: np.ndarray, s: np.ndarray, far: float,
                roc: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                ) -> tuple[float, float, int]:
    fpr, tpr, thr = roc if roc is not None else _roc(d, s)
    ok = np.flatnonzero(fpr <= far)
    j = ok[np.argmax(tpr[ok])]  # fpr[0] == 0 so ``ok`` is never empty
    thr_far = float(thr[j]) if np.isfinite(thr[j]) else float(d.min()) - 1e-6
    accepted = int(round(float(tpr[j]) * int(s.sum())))
    return float(tpr[j]), thr_far, accepted


def tar_at_far(distances: Any, same: Any, far: float) -> tuple[float, float, int]:
    """(TAR, distance threshold, genuine pairs accepted) at the largest TAR whose FAR is
    <= ``far``; accept when ``distance <= threshold``."""
    d, s = _check(distances, same)
    if not 0 < far < 1:
        raise ValueError(f"far must lie in (0, 1), got {far}")
    return _tar_at_far(d, s, far)


def _dist_matrix(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    if metric == "euclidean":
        sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
        return np.sqrt(np.maximum(sq, 0.0))
    if metric == "cosine":
        an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return 1.0 - an @ bn.T
    raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")


def identification_top1(gallery_emb: Any, gallery_labels: Any, probe_emb: Any,
                        probe_labels: Any, metric: str, *,
                        rule: Literal["nearest-neighbour", "class-mean"] = "nearest-neighbour"
                        ) -> float:
    """Closed-set rank-1 rate: each probe gets the label of its nearest gallery embedding
    (``rule="nearest-neighbour"``, default) or of the nearest per-class mean embedding
    (``rule="class-mean"``; for cosine the means of L2-normalised embeddings)."""
    g = np.asarray(gallery_emb, dtype=np.float64)
    p = np.asarray(probe_emb, dtype=np.float64)
    gl = np.asarray(gallery_labels).reshape(-1)
    pl = np.asarray(probe_labels).reshape(-1)
    if g.ndim != 2 or p.ndim != 2 or g.shape[1] != p.shape[1]:
        raise ValueError(f"embeddings must be 2-D with equal widths, got {g.shape} and {p.shape}")
    if gl.size != g.shape[0] or pl.size != p.shape[0]:
        raise ValueError("labels must have one entry per embedding row")
    if g.shape[0] == 0 or p.shape[0] == 0:
        raise ValueError("gallery and probe must not be empty")
    classes = np.unique(gl)
    unknown = np.setdiff1d(np.unique(pl), classes)
    if unknown.size:
        raise ValueError(f"closed-set identification: probe labels {unknown[:5].tolist()} "
                         "have no gallery image")
    if rule == "nearest-neighbour":
        refs, ref_labels = g, gl
    elif rule == "class-mean":
        src = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12) \
            if metric == "cosine" else g
        refs = np.stack([src[gl == c].mean(0) for c in classes])
        ref_labels = classes
    else:
        raise ValueError(f"rule must be 'nearest-neighbour' or 'class-mean', got {rule!r}")
    dist = _dist_matrix(p, refs, metric)
    pred = ref_labels[np.argmin(dist, axis=1)]
    return float((pred == pl).mean())
