"""Detection figures: AUROC (with the Hanley-McNeil 95% interval), Macro-AUC over attacks,
TPR at a fixed false-positive rate, and ROC points for plots."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from facerobust.core.stats import Rate


def auroc(clean: np.ndarray, adversarial: np.ndarray) -> float:
    """Area under the ROC of scores (adversarial = positive); nan when a side is empty."""
    if len(clean) == 0 or len(adversarial) == 0:
        return float("nan")
    y = np.r_[np.zeros(len(clean)), np.ones(len(adversarial))]
    return float(roc_auc_score(y, np.r_[clean, adversarial]))


def auroc_interval(auc: float, n_clean: int, n_adversarial: int) -> tuple[float, float]:
    """95% interval of an AUROC (Hanley and McNeil, Radiology 1982)."""
    if math.isnan(auc) or n_clean == 0 or n_adversarial == 0:
        return (float("nan"), float("nan"))
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_adversarial - 1) * (q1 - auc * auc)
           + (n_clean - 1) * (q2 - auc * auc)) / (n_clean * n_adversarial)
    half = 1.96 * math.sqrt(max(var, 0.0))
    return (max(0.0, auc - half), min(1.0, auc + half))


def macro_auc(clean: np.ndarray, adversarial: np.ndarray, groups: np.ndarray) -> float:
    """Mean AUROC over the attack groups of the adversarial scores (Massoli et al.)."""
    values = [auroc(clean, adversarial[groups == g]) for g in np.unique(groups)]
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def detected(scores: np.ndarray, threshold: float) -> Rate:
    return Rate.of(np.asarray(scores) > threshold)


def roc_points(clean: np.ndarray, adversarial: np.ndarray, limit: int = 60
               ) -> list[list[float]]:
    """At most ``limit`` (fpr, tpr) points of the ROC curve, for the report's plot."""
    if len(clean) == 0 or len(adversarial) == 0:
        return []
    y = np.r_[np.zeros(len(clean)), np.ones(len(adversarial))]
    fpr, tpr, _ = roc_curve(y, np.r_[clean, adversarial])
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(limit, len(fpr))).round().astype(int))
    return [[round(float(fpr[i]), 4), round(float(tpr[i]), 4)] for i in keep]
