"""A synthetic but structurally complete results.json, built from the typed result units."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from facerobust.eval.audit_summary import add_derived
from facerobust.eval.results import (
    AttackUnit,
    CleanUnit,
    DefenseUnit,
    MinimalUnit,
    ModelOutcome,
)
from facerobust.eval.results_audit import Results
from facerobust.eval.results_file import wrap
from facerobust.eval.stats import Rate

EPS = [1 / 255, 2 / 255, 4 / 255]
LABELS = ["1/255", "2/255", "4/255"]


def _attack(name: str, goal: str, success: list[int], transfer: list[int]) -> dict[str, Any]:
    n = 4
    score_clean = [0.4, 0.45, 0.5, 0.3] if goal == "dodging" else [0.9, 0.8, 0.85, 0.95]
    score_adv = [[0.5 + 0.1 * i + 0.05 * j if goal == "dodging" else 0.7 - 0.1 * i
                  for j in range(n)] for i in range(len(EPS))]
    return AttackUnit(
        key=f"{name}-linf-{goal}", attack=name, kind="white-box", norm="linf", goal=goal,
        victim="dlib-resnet", epsilons=EPS, epsilon_labels=LABELS, n=n,
        settings={"steps": 5}, clean_success=Rate(0, n), success=[Rate(k, n) for k in success],
        score_clean=score_clean, score_adv=score_adv,
        transfer={"mobilefacenet": ModelOutcome(Rate(0, n), [Rate(k, n) for k in transfer],
                                                [0.1] * n, [[0.2] * n for _ in EPS])},
        mean_perturbation=EPS, max_perturbation=EPS,
        full_budget_success=[Rate(k, n) for k in success],
        transfer_adversarials="full budget", seconds=1.5).to_dict()


def _clean(accuracy: float) -> dict[str, Any]:
    return CleanUnit(
        model="m", protocol="k-fold", n_pairs=600, n_same=300, n_diff=300, n_folds=10,
        accuracy=accuracy, accuracy_std=0.0031, correct=Rate(595, 600), auc=0.9987, eer=0.0123,
        far=0.001, tar_at_far=Rate(287, 300), threshold_at_far=0.58, best_threshold=0.6,
        operating_threshold=0.6, genuine_accept=Rate(297, 300), impostor_reject=Rate(298, 300),
        correct_at_operating_threshold=Rate(595, 600),
        roc={"fpr": [0.0, 0.001, 0.01, 0.1, 1.0], "tpr": [0.0, 0.95, 0.98, 0.99, 1.0]},
        identification_top1=Rate(97, 100)).to_dict()


def _defense() -> dict[str, Any]:
    two = [Rate(3, 4), Rate(4, 4)]
    return DefenseUnit(
        name="jpeg:q=75", slug="jpeg-q-75", params={"q": 75}, model="dlib-resnet",
        goal="dodging", attack="PGD", norm="linf", epsilons=[2 / 255, 4 / 255],
        epsilon_labels=["2/255", "4/255"], adaptive_mode="bpda",
        clean_measure="verification decisions at the operating threshold",
        clean=Rate(588, 600), clean_undefended=Rate(595, 600), far=0.001,
        tar_at_far=Rate(270, 300), tar_at_far_undefended=Rate(287, 300), n_attacked=4,
        undefended=two, naive=[Rate(1, 4), Rate(2, 4)], adaptive=[Rate(2, 4), Rate(4, 4)],
        direct=[Rate(0, 4), Rate(0, 4)], blackbox=None, worst_case=two, ms_per_image=1.23,
        masking={"zero_gradients": True}, flags=["Gradients through the defense are zero."],
        notes=[]).to_dict()


def make_typed() -> Results:
    """A typed audit result with its derived figures."""
    from facerobust.info import collect

    results: dict[str, Any] = {
        "command": "audit",
        "config": {"run": {"name": "synthetic", "seed": 0}},
        "config_text": "[run]\nname = 'synthetic'\n",
        "environment": collect(),
        "seed": 0, "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:01:00+00:00",
        "dataset": {"name": "lfw-gray", "root": "/x", "pairs_source": "/x/pairs.txt",
                    "protocol": "30 matched + 30 mismatched pairs of every fold of x/pairs.txt",
                    "n_images": 10, "pairs_dropped": 1,
                    "identification": {"source": "identity_split", "identities": 20,
                                       "enrolment_images": 200, "probe_images": 200,
                                       "head": "cosine-softmax head", "split": {}},
                    "skipped": [{"path": "/x/bad.jpg", "reason": "no face found"}]},
        "models": {"victim": "dlib-resnet", "others": ["mobilefacenet"], "missing": {},
                   "details": {"dlib-resnet": {"metric": "euclidean", "threshold": 0.6},
                               "mobilefacenet": {"metric": "cosine", "threshold": 0.7}}},
        "clean": {"dlib-resnet": _clean(0.9912), "mobilefacenet": _clean(0.9733)},
        "attacks": [_attack("pgd", "dodging", [1, 3, 4], [0, 1, 2]),
                    _attack("pgd", "impersonation", [0, 2, 4], [0, 0, 1])],
        "minimal": MinimalUnit(attack="pgd", norm="linf", goal="dodging", n=4,
                               max_epsilon=16 / 255,
                               per_sample=[1 / 255, 2 / 255, None, 3 / 255], found=Rate(3, 4),
                               median=2 / 255, passes=40).to_dict(),
        "defenses": [_defense()],
    }
    return add_derived(Results.from_dict(results))


def make_results() -> dict[str, Any]:
    """The same as written to results.json (schema 3, kind audit)."""
    return wrap(make_typed())


@pytest.fixture()
def results_file(tmp_path: Path) -> Path:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(make_results()))
    return path
