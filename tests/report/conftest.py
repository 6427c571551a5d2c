"""A synthetic but structurally complete results.json (as the audit writes it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


def _attack(name: str, goal: str, success: list[float], transfer: list[float]) -> dict[str, Any]:
    eps = [1 / 255, 2 / 255, 4 / 255]
    n = 4
    return {
        "key": f"{name}-linf-{goal}", "attack": name, "norm": "linf", "goal": goal,
        "victim": "dlib-resnet", "epsilons": eps, "n": n, "steps": 5, "seconds": 1.5,
        "queries_mean": None, "clean_success": 0.0, "success": success,
        "score_clean": [0.4, 0.45, 0.5, 0.3] if goal == "dodging" else [0.9, 0.8, 0.85, 0.95],
        "score_adv": [[0.5 + 0.1 * i + 0.05 * j if goal == "dodging" else 0.7 - 0.1 * i
                       for j in range(n)] for i in range(len(eps))],
        "transfer": {"mobilefacenet": {"clean_success": 0.0, "success": transfer,
                                       "score_clean": [0.1] * n,
                                       "score_adv": [[0.2] * n for _ in eps]}},
        "examples": None,
    }


def make_results() -> dict[str, Any]:
    from facerobust.eval import audit_summary as summary
    from facerobust.info import collect

    clean = {
        "accuracy": 0.9912, "accuracy_std": 0.0031, "auc": 0.9987, "eer": 0.0123,
        "tar_at_far": 0.9567, "far": 0.001, "threshold_at_far": 0.58, "n_pairs": 600,
        "roc": {"fpr": [0.0, 0.001, 0.01, 0.1, 1.0], "tpr": [0.0, 0.95, 0.98, 0.99, 1.0]},
        "operating_threshold": 0.6, "genuine_accept_rate": 0.99, "impostor_reject_rate": 0.995,
        "accuracy_at_operating_threshold": 0.9925, "identification_top1": 0.97,
    }
    results: dict[str, Any] = {
        "schema_version": 1,
        "config": {"run": {"name": "synthetic", "seed": 0}},
        "config_text": "[run]\nname = 'synthetic'\n",
        "environment": collect(),
        "seed": 0, "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:01:00+00:00",
        "dataset": {"name": "lfw-gray", "root": "/x", "protocol": "LFW pairs.txt",
                    "n_images": 10, "pairs_dropped": 1,
                    "skipped": [{"path": "/x/bad.jpg", "reason": "no face found"}]},
        "models": {"victim": "dlib-resnet", "others": ["mobilefacenet"], "missing": {},
                   "details": {"dlib-resnet": {"metric": "euclidean", "threshold": 0.6},
                               "mobilefacenet": {"metric": "cosine", "threshold": 0.7}}},
        "clean": {"dlib-resnet": clean, "mobilefacenet": {**clean, "accuracy": 0.9733}},
        "attacks": [_attack("pgd", "dodging", [0.25, 0.75, 1.0], [0.0, 0.25, 0.5]),
                    _attack("pgd", "impersonation", [0.0, 0.5, 1.0], [0.0, 0.0, 0.25])],
        "minimal": {"attack": "pgd", "norm": "linf", "goal": "dodging", "n": 4,
                    "per_sample": [1 / 255, 2 / 255, None, 3 / 255], "median": 2 / 255,
                    "found_rate": 0.75, "passes": 40, "max_epsilon": 16 / 255},
        "defenses": [{"name": "jpeg:q=75", "slug": "jpeg-q-75", "epsilons": [2 / 255, 4 / 255],
                      "undefended": [0.75, 1.0], "naive": [0.25, 0.5], "adaptive": [0.5, 1.0],
                      "clean": {"accuracy": 0.98, "tar_at_far": 0.9},
                      "ms_per_image": 1.23, "flags": ["zero gradients"]}],
    }
    return summary.add_derived(results)


@pytest.fixture()
def results_file(tmp_path: Path) -> Path:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(make_results()))
    return path
