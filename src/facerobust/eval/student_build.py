"""Build and judge ``dlib-student`` (issue 29): dlib-resnet distilled (:mod:`.student_train`,
pinned recipe :data:`STUDENT_RECIPE`) on chips of people who are never judged (CFP minus the
people also in LFW, and gray LFW people outside View 2), then judged on colour LFW's View 2
pairs beside the teacher: 10-fold accuracy, figures at each model's threshold, and the
student's probes against a gallery enrolled with dlib at dlib's threshold (can it stand in?),
plus ms/image at batch 32 on one thread. Every rate is a :class:`~facerobust.core.stats.Rate`.

``facerobust models build dlib-student`` runs :func:`build_student`; the weights go to
:func:`facerobust.models.dlib_student.built_path` with ``<name>.card.json`` beside them.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facerobust.core.embedding import embed
from facerobust.core.stats import Rate
from facerobust.data.chips import load_chips
from facerobust.data.lfw import LFWPairs
from facerobust.data.resolve import resolve_dataset
from facerobust.eval.datasource import as_dataset, verification_sample
from facerobust.eval.distillation import calibrate_threshold, ms_per_image
from facerobust.eval.hardened import cfp_training_chips
from facerobust.eval.metrics import verification_metrics
from facerobust.eval.student_train import StudentRecipe, distil_student
from facerobust.models import load
from facerobust.models.base import FaceModel, accepts, pair_distance
from facerobust.models.dlib_resnet import DlibResNet
from facerobust.models.dlib_student import NAME, built_path, card_path, save_student_file
from facerobust.models.dlib_student import build as build_from_file

CARD_KIND = "student-build-card"
# the pinned recipe (docs/studies.md "dlib-student"): 112 px, 8 of 14 blocks, half the
# channels in the first three stages and three quarters in the last two; 120 epochs, mixup
STUDENT_RECIPE = StudentRecipe()


def lfw_outside_view2(data: Path | str | None = None) -> tuple[list[Path], list[str]]:
    """Gray LFW photos of people with no photo in View 2's pairs (never judged), and their
    people."""
    view2 = LFWPairs(resolve_dataset("lfw", data))
    judged = {p.parent.name for p in view2.image_paths()}
    rows = [(p, name) for name, photos in view2.people().items() if name not in judged
            for p in photos]
    return [p for p, _ in rows], [n for _, n in rows]


def training_chips(data: Path | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 chips and person labels: CFP's training people, then gray LFW people outside
    View 2 (HOG alignment; photos without a face are skipped)."""
    cfp, cfp_labels = cfp_training_chips(data)
    paths, names = lfw_outside_view2(data)
    lfw = load_chips(paths, cache=True, progress=True, detector="hog")
    owner = dict(zip(paths, names, strict=True))
    ids = {n: k for k, n in enumerate(sorted(set(names)), start=int(cfp_labels.max()) + 1)}
    labels = torch.cat([cfp_labels, torch.tensor([ids[owner[p]] for p in lfw.paths],
                                                 dtype=cfp_labels.dtype)])
    chips = torch.cat([cfp, lfw.chips])
    return (chips * 255).round().to(torch.uint8), labels


def speed(teacher: nn.Module, student: nn.Module, rounds: int = 5) -> dict[str, float]:
    """ms/image at batch 32 on one thread, teacher and student interleaved; medians."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t, s = zip(*[(ms_per_image(teacher), ms_per_image(student)) for _ in range(rounds)],
                   strict=True)
    finally:
        torch.set_num_threads(threads)
    # the ratio of each round (side by side, so a busy moment slows both), then the median
    ratio = statistics.median(a / b for a, b in zip(t, s, strict=True))
    return {"teacher_ms": round(statistics.median(t), 3),
            "student_ms": round(statistics.median(s), 3), "speedup": round(ratio, 2),
            "rounds": rounds}


def judge_student(teacher: FaceModel, student: FaceModel, data: Path | str | None = None
                  ) -> dict[str, Any]:
    """Teacher and student on colour LFW View 2 (all pairs whose photos align)."""
    sample = verification_sample(as_dataset(resolve_dataset("lfw-color", data)),
                                 limit_pairs=None, seed=0)
    p, chips = sample.pairs, sample.chipset.chips
    a, b, same = torch.as_tensor(p.a), torch.as_tensor(p.b), torch.as_tensor(p.same)
    emb = {"teacher": embed(teacher, chips, 64), "student": embed(student, chips, 64)}
    out: dict[str, Any] = {"dataset": "lfw-color", "pairs": len(p)}
    for name, model in (("teacher", teacher), ("student", student)):
        d = pair_distance(emb[name][a], emb[name][b], "euclidean")
        m = verification_metrics(d.numpy(), p.same, p.fold)
        ok = accepts(d, float(model.threshold))
        out[name] = {"accuracy_10fold": m.accuracy, "accuracy_std": m.accuracy_std,
                     "threshold": float(model.threshold),
                     "genuine_accept": Rate.of(ok[same]).to_dict(),
                     "impostor_reject": Rate.of(~ok[~same]).to_dict()}
    # can it stand in? the student's probe against the photo enrolled with dlib, dlib's rule
    cross = accepts(pair_distance(emb["student"][a], emb["teacher"][b], "euclidean"),
                    float(teacher.threshold))
    out["student_vs_dlib_gallery"] = {"genuine_accept": Rate.of(cross[same]).to_dict(),
                                      "impostor_reject": Rate.of(~cross[~same]).to_dict()}
    return out


def build_student(*, out: Path | None = None, recipe: StudentRecipe = STUDENT_RECIPE,
                  data: Path | str | None = None, judge: bool = True, progress: bool = True
                  ) -> dict[str, Any]:
    """Distil ``dlib-student`` with ``recipe``, calibrate its threshold on the held-out
    training people (dlib's threshold when none are held out), save it at ``out`` (default:
    where the zoo looks), judge the saved file beside the teacher on colour LFW when
    ``judge``, and write the card beside the weights. A killed run resumes from
    ``<out>.ckpt``."""
    out = Path(out) if out is not None else built_path()
    start = time.perf_counter()
    chips, labels = training_chips(data)
    teacher = load("dlib-resnet")
    if not isinstance(teacher, DlibResNet):
        raise TypeError(f"dlib-student is cut out of dlib-resnet, got {type(teacher).__name__}")
    r = replace(recipe, checkpoint=str(out.with_name(out.name + ".ckpt")), progress=progress)
    held = labels < int(labels.min()) + recipe.holdout_people  # the first CFP people
    student, report = distil_student(teacher, chips[~held], r)
    threshold, calibrated = (calibrate_threshold(student, chips[held].float() / 255,
                                                 labels[held]) if bool(held.any())
                             else (float(teacher.threshold), None))
    student.threshold = float(threshold)
    save_student_file(out, student, recipe.to_dict())
    shipped = build_from_file(weights=out)  # judge what is saved: float16 weights
    card: dict[str, Any] = {
        "kind": CARD_KIND, "name": NAME, "weights": out.name, "recipe": recipe.to_dict(),
        "layout": shipped.layout.to_dict(),
        "training": {"data": "CFP training people (CFP minus LFW overlap) + gray LFW people "
                             "outside View 2", "people": int(labels[~held].unique().numel()),
                     "chips": int((~held).sum()), "steps": report.steps,
                     "seconds": report.seconds, "threads": torch.get_num_threads(),
                     "loss_history": report.loss_history},
        "threshold": {"value": float(threshold),
                      "calibrated_on": f"{int(held.sum())} chips of {recipe.holdout_people} "
                                       "held-out CFP training people (not distilled on)"
                                       if calibrated is not None else "dlib's threshold",
                      "accuracy_there": calibrated},
        "speed": speed(teacher, shipped)}
    if judge:
        card["judged"] = judge_student(teacher, shipped, data)
    card["seconds_total"] = round(time.perf_counter() - start, 1)
    card_path(out).write_text(json.dumps(card, indent=1))
    return card
