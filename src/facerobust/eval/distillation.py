"""``facerobust distill``: distil a small student from a teacher, measure it, save it with a
model card.

Data (any layout, :mod:`facerobust.eval.datasource`): images of identities that appear in
*no* evaluation pair (the first ``eval_pairs`` of the dataset's protocol, or a generated
one), a seeded draw of at most ``max_images``. Measured on the evaluation pairs, their chips
loaded once, for teacher and student side by side (:func:`facerobust.eval.compare.compare_on`:
k-fold accuracy, genuine / impostor distance statistics, FGSM error rates), ms/image at batch
32 on this CPU, and transfer: PGD dodging crafted on the teacher, judged on the student.

>>> card = distill_study("dlib-resnet", "/data/lfw-gray",
...                      out=Path("runs/student/student.pt"))           # doctest: +SKIP
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facerobust import models
from facerobust.attacks import LINF, Dodging
from facerobust.attacks.registry import build_attack, full_budget
from facerobust.core.embedding import embed
from facerobust.core.splits import label_pairs
from facerobust.core.stats import Rate
from facerobust.data.chips import load_chips
from facerobust.data.sources import Dataset
from facerobust.eval.compare import compare_on
from facerobust.eval.datasource import DataSource, as_dataset, identity_of, verification_sample
from facerobust.eval.metrics import best_threshold
from facerobust.eval.results_file import write_result_file
from facerobust.eval.results_study import (
    Speed,
    StudentCard,
    StudentData,
    StudentLfw,
    StudentTraining,
    TransferPoint,
    load_card,
)
from facerobust.eval.tasks import spread
from facerobust.models.distill import TrainStudentOptions, train_student
from facerobust.models.student import StudentNet, save_student
from facerobust.system import FaceSystem

TRANSFER_EPS = (2 / 255, 4 / 255, 8 / 255)


def ms_per_image(model: nn.Module, *, batch: int = 32, repeats: int = 5) -> float:
    """Best-of-``repeats`` wall time of a no-grad forward of ``batch`` random chips, per image
    (ms); the best is the figure least disturbed by other processes on a shared machine."""
    x = torch.rand(batch, 3, 150, 150)
    times = []
    with torch.no_grad():
        model(x[:2])
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return float(np.min(times)) / batch * 1000


def training_paths(people: dict[str, list[Path]], excluded: set[str], *, max_images: int,
                   seed: int) -> tuple[list[Path], list[int]]:
    """A seeded draw of at most ``max_images`` images of identities not in ``excluded``, with
    integer identity labels."""
    names = sorted(n for n in people if n not in excluded)
    pool = [(p, i) for i, n in enumerate(names) for p in sorted(people[n])]
    if len(pool) < 10:
        raise ValueError(f"only {len(pool)} images belong to identities outside the evaluation "
                         "pairs; distillation needs >= 10")
    pick = np.random.default_rng(seed).permutation(len(pool))[:max_images]
    chosen = sorted(pick.tolist())
    return [pool[k][0] for k in chosen], [pool[k][1] for k in chosen]


def calibrate_threshold(model: nn.Module, chips: torch.Tensor, labels: torch.Tensor
                        ) -> tuple[float, float]:
    """Accuracy-maximising threshold (and its accuracy) on genuine / impostor pairs of the
    training identities (never on evaluation pairs)."""
    a, b, same = label_pairs(labels)
    if not bool(same.any()) or bool(same.all()):
        raise ValueError("calibration needs >= 2 images of some identity and >= 2 identities")
    emb = embed(model, chips)
    d = model.distance(emb[a], emb[b]).numpy().astype(np.float64)  # type: ignore[operator]
    return best_threshold(d, same.numpy())


def save_with_card(path: Path, model: StudentNet, card: StudentCard,
                   card_file: Path | None = None) -> StudentCard:
    """Write the student ``path`` and its card (``card`` with the weights' file name, SHA-256
    and the model's architecture filled in) to ``card_file`` (default: ``<stem>.card.json``
    beside it; a run folder's ``results.json``); returns the card as read back."""
    sha = save_student(path, model)
    target = card_file or path.with_name(path.stem + ".card.json")
    cfg = model.config()
    full = replace(card, weights_file=path.name, weights_sha256=sha,
                   embedding_dim=int(cfg["embedding_dim"]), widths=list(cfg["widths"]),
                   input_px=int(cfg["input_px"]), metric=str(cfg["metric"]),
                   threshold=float(cfg["threshold"]))
    write_result_file(target, full)
    return load_card(target)


def transfer(teacher: nn.Module, student: nn.Module, chips: torch.Tensor, pairs: Any,
             n: int, *, steps: int = 10, seed: int = 0) -> list[TransferPoint]:
    """PGD dodging on genuine pairs both models accept (each as a
    :class:`~facerobust.system.FaceSystem` at its threshold), crafted on the teacher at each budget
    of :data:`TRANSFER_EPS`: success on the teacher (white-box) and on the student."""

    a, b = torch.as_tensor(pairs.a), torch.as_tensor(pairs.b)
    refs = {}
    ok = pairs.same.copy()
    for key, m in (("teacher", teacher), ("student", student)):
        emb = embed(m, chips)
        refs[key] = emb[b]
        system = FaceSystem(m, threshold=float(m.threshold), name=key)  # type: ignore[arg-type]
        ok &= system.accepts(m.distance(emb[a], emb[b]).numpy())  # type: ignore[operator]
    rows = torch.as_tensor(spread(np.flatnonzero(ok), n))
    if not len(rows):
        return []
    x = chips[a[rows]]
    attack = full_budget(build_attack("pgd", LINF, steps=steps))
    res = attack(teacher, x, Dodging.for_model(teacher, refs["teacher"][rows]),
                 epsilons=list(TRANSFER_EPS), generator=torch.Generator().manual_seed(seed))
    crit = Dodging.for_model(student, refs["student"][rows])
    out = []
    for i, eps in enumerate(TRANSFER_EPS):
        with torch.no_grad():
            on_student = crit.is_adversarial(student(res.clipped[i]))
        out.append(TransferPoint(eps=float(eps), teacher=Rate.of(res.success[i]),
                                 student=Rate.of(on_student)))
    return out


@dataclass(frozen=True)
class DistillOptions:
    """``eval_pairs`` protocol pairs (identities kept out of training), at most
    ``max_images`` training chips, ``epochs``, the student's ``widths`` and ``input_px``,
    ``n_attack`` pairs for the transfer attack."""

    eval_pairs: int = 600
    max_images: int = 10000
    epochs: int = 30
    widths: tuple[int, ...] = (16, 32, 64, 128)
    input_px: int = 48
    n_attack: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.widths or min(self.widths) < 1 or self.epochs < 1 or self.n_attack < 1:
            raise ValueError(f"widths must be positive and epochs, n_attack >= 1, got "
                             f"{self.widths}, {self.epochs}, {self.n_attack}")


def distill_study(teacher_name: str, dataset: Dataset | DataSource | Path | str, *, out: Path,
                  options: DistillOptions | None = None, progress: bool = True,
                  card_file: Path | None = None) -> StudentCard:
    """Distil, measure and save the student ``out`` (.pt) and its card ``card_file``
    (default ``<stem>.card.json`` beside it); returns the typed card."""
    o = options or DistillOptions()
    max_images, epochs, widths = o.max_images, o.epochs, o.widths
    input_px, n_attack, seed = o.input_px, o.n_attack, o.seed
    if out.suffix != ".pt":
        raise ValueError(f"--out {out}: the student file must end in .pt")
    t0 = time.perf_counter()
    opened = as_dataset(dataset)
    teacher = models.load(teacher_name).requires_grad_(False)
    sample = verification_sample(opened, limit_pairs=o.eval_pairs, seed=seed,
                                 progress=progress)
    owner = identity_of(opened)
    excluded = {owner.get(p, "") for pair in sample.chosen for p in (pair.path_a, pair.path_b)}
    paths, labels = training_paths(opened.people, excluded, max_images=max_images, seed=seed)
    chipset = load_chips(paths, cache=True, progress=progress)
    label_of = dict(zip(paths, labels, strict=True))
    y = torch.tensor([label_of[p] for p in chipset.paths])
    student = StudentNet(embedding_dim=int(getattr(teacher, "embedding_dim", 128)) or 128,
                         widths=widths, input_px=input_px,
                         metric=getattr(teacher, "metric", "euclidean"),
                         name=out.stem)
    student, hist = train_student(teacher, chipset.chips,
                                  TrainStudentOptions(epochs=epochs, seed=seed),
                                  student=student, progress=progress)
    student.threshold, calib_acc = calibrate_threshold(student, chipset.chips, y)
    if progress:
        print(f"distill: student threshold {student.threshold:.4f} (training-pair accuracy "
              f"{calib_acc:.3f}); measuring on {len(sample.chosen)} evaluation pairs",
              file=sys.stderr)
    cmp = compare_on({teacher_name: teacher, out.stem: student}, sample, n_attack=n_attack,
                     seed=seed, progress=progress)
    t_ms, s_ms = ms_per_image(teacher), ms_per_image(student)
    card = StudentCard(
        name=out.stem,
        architecture=f"{len(widths)} conv blocks {list(widths)}, {input_px}px input, linear "
        f"to {student.embedding_dim}-d",
        parameters=sum(p.numel() for p in student.parameters()), teacher=teacher_name,
        threshold_source="best threshold on training-identity pairs",
        data=StudentData(dataset=str(opened.root), images=len(chipset.paths),
                         identities=int(y.unique().numel()), skipped=len(chipset.skipped),
                         excluded_identities=len(excluded),
                         note="no identity of the evaluation pairs is in the training data"),
        training=StudentTraining(epochs=epochs, seed=seed, **hist.to_dict(),
                                 calibration_accuracy=calib_acc),
        lfw=StudentLfw(pairs_file=sample.source, pairs_requested=o.eval_pairs, n_pairs=cmp.n_pairs,
                       student_accuracy=cmp.models[1].accuracy,
                       teacher_accuracy=cmp.models[0].accuracy),
        comparison=cmp,
        ms_per_image_batch32=Speed(student=s_ms, teacher=t_ms, speedup=t_ms / s_ms,
                                   torch_threads=torch.get_num_threads()),
        transfer_teacher_to_student=transfer(teacher, student, sample.chipset.chips,
                                             sample.pairs, n_attack, seed=seed),
        measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        seconds=time.perf_counter() - t0,
        weights_file="", weights_sha256="", embedding_dim=student.embedding_dim,
        widths=list(widths), input_px=input_px, metric=str(student.metric),
        threshold=float(student.threshold))
    return save_with_card(out, student, card, card_file)
