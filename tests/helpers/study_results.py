"""Small but structurally complete typed study results (comparison, student card, defensive
distillation, judged hardening), built from the dataclasses, for fast round-trip and report
tests."""

from __future__ import annotations

from typing import Any

from facerobust.eval.compare import Comparison, FgsmPoint, ModelComparison
from facerobust.eval.results_study import (
    DefensiveHead,
    DefensiveResult,
    JudgedCondition,
    JudgedHardening,
    Speed,
    StudentCard,
    StudentData,
    StudentLfw,
    StudentTraining,
    TransferPoint,
)
from facerobust.eval.stats import Rate


def model_row(name: str, metric: str, correct: int, errors: list[int]) -> ModelComparison:
    return ModelComparison(
        model=name, metric=metric, n_pairs=60, accuracy=correct / 60, accuracy_std=0.05,
        correct=Rate(correct, 60), fold_thresholds=[0.5, 0.55], genuine_mean=0.41,
        genuine_var=0.0123, impostor_mean=0.83, impostor_var=0.0211,
        clean_error=Rate(errors[0], 40),
        fgsm=[FgsmPoint(e, Rate(k, 40)) for e, k in zip((0.01, 0.02), errors[1:], strict=True)],
        seconds=1.0)


def comparison() -> Comparison:
    return Comparison(dataset="/data/lfw", pairs_file="pairs.txt",
                      n_pairs=60, n_pairs_excluded=0, n_attacked=40, seed=0,
                      models=[model_row("teacher-x", "euclidean", 57, [1, 27, 39]),
                              model_row("student-y", "cosine", 49, [6, 21, 33])])


def student_card() -> StudentCard:
    return StudentCard(
        name="student-y", architecture="2 conv blocks [4, 8]",
        parameters=1234, teacher="teacher-x", threshold_source="training-identity pairs",
        data=StudentData(dataset="/data/lfw", images=80, identities=20, skipped=0,
                         excluded_identities=12, note="disjoint"),
        training=StudentTraining(epochs=3, seed=0, train_loss=[1.0, 0.5, 0.4],
                                 val_loss=[0.9, 0.6, 0.65], best_epoch=1, n_train=72, n_val=8,
                                 calibration_accuracy=0.8),
        lfw=StudentLfw(pairs_file="pairs.txt", n_pairs=60, student_accuracy=49 / 60,
                       teacher_accuracy=57 / 60, pairs_requested=60),
        comparison=comparison(),
        ms_per_image_batch32=Speed(student=0.5, teacher=3.5, speedup=7.0, torch_threads=1),
        transfer_teacher_to_student=[TransferPoint(2 / 255, Rate(12, 12), Rate(3, 12)),
                                     TransferPoint(8 / 255, Rate(12, 12), Rate(7, 12))],
        measured_at="2026-11-27T00:00:00+00:00", seconds=12.0, weights_file="student-y.pt",
        weights_sha256="ab" * 32, embedding_dim=8, widths=[4, 8], input_px=16,
        metric="cosine", threshold=0.42)


def _head(top1: int, naive: int, logit: int, cw: int) -> DefensiveHead:
    return DefensiveHead(probe_top1=Rate(top1, 50), n_correct=40, n_probes=40,
                         mean_top_logit_gap=3.5, zero_gradient=Rate(0, 40),
                         naive_pgd=Rate(naive, 40), logit_pgd=Rate(logit, 40),
                         cw_l2_logits=Rate(cw, 40), cw_l2_unbounded=Rate(40, 40))


def defensive() -> DefensiveResult:
    return DefensiveResult(model="teacher-x",
                           dataset="/data/lfw", identities=10, n_train=50, n_probe=50,
                           temperature=100.0, eps=2 / 255, pgd_steps=10, cw_l2_budget=1.0,
                           cw_steps=30, seed=0, head_epochs=200,
                           heads={"plain": _head(48, 40, 40, 39),
                                  "distilled": _head(47, 11, 38, 29)})


def judged() -> JudgedHardening:
    rows = {"a_clean": ("clean pair accuracy", Rate(92, 96), Rate(70, 96)),
            "b_trained_attack": ("the training attack", Rate(45, 47), Rate(33, 48)),
            "c_cw_l2": ("another family", Rate(18, 47), Rate(0, 48)),
            "d_augmented_attack": ("augmented probes", Rate(9, 9), Rate(7, 9))}
    return JudgedHardening(
        eps=2 / 255, steps=3,
        settings={"larger": 2.0, "cw_l2": 0.5, "adaptive_steps": 40, "restarts": 2},
        conditions={k: JudgedCondition(c, b, a) for k, (c, b, a) in rows.items()})


def legacy(doc: dict[str, Any], key: str = "schema_version") -> dict[str, Any]:
    """``doc`` as a study wrote it before the result wrapper (its own version 1)."""
    out = {k: v for k, v in doc.items() if k not in ("schema_version", "kind")}
    return {key: 1, **out}


def training_doc() -> dict[str, Any]:
    """A training.json as adv-train wrote it before the wrapper, with a judged block."""
    robust = {"clean_accuracy": 0.9, "attack_success": 0.8, "n_genuine": 48, "n_impostor": 48}
    return {"model": "teacher-x", "train_identities": ["A", "B"], "holdout_identities": ["C"],
            "validation_identities": [], "epochs": 2, "eps": 2 / 255, "steps": 3,
            "layers": "last", "augment": True, "goal": "dodging", "n_train": 8,
            "n_identities": 2, "trainable_parameters": 10, "steps_done": 4, "seconds": 3.0,
            "stopped_early": False, "loss_history": [1.0, 0.8], "before": robust,
            "after": {**robust, "attack_success": 0.6}, "adv_fraction": 0.5,
            "augmentation": {"rotation": 10.0}, "val_history": [], "best_epoch": None,
            "clean_accuracy_cost": 0.0, "robustness_gain": 0.2,
            "judged": {"schema_version": 1, **judged().to_dict()}}
