"""The identification studies on the core: ``train-head`` (a closed-set head over the shared
split, :func:`facerobust.core.splits.identity_split`) and ``adv-train`` (identity-disjoint
groups drawn by :func:`facerobust.core.splits.choose_identities`), over any dataset layout
(:class:`facerobust.eval.datasource.DataSource`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facerobust import models
from facerobust.core.splits import choose_identities, identity_split
from facerobust.core.stats import Rate
from facerobust.data.chips import load_chips
from facerobust.defenses.hardening import (
    HardeningOptions,
    describe_conditions,
    hardening_evaluation,
)
from facerobust.defenses.training import FinetuneOptions, TrainingReport, adversarial_finetune
from facerobust.eval.datasource import DataSource, identity_of
from facerobust.eval.results_study import (
    AdvTrainResult,
    HeadTrainingResult,
    JudgedCondition,
    JudgedHardening,
)
from facerobust.eval.tasks import embed_paths
from facerobust.models.heads import HeadKind, save_identification, train_head


@dataclass(frozen=True)
class HeadOptions:
    """The identification split (``identities`` people with ``images`` each, ``gallery`` of
    them enrolled, drawn among people with >= ``min_images``) and the head's training."""

    identities: int
    images: int
    gallery: int
    min_images: int
    kind: HeadKind = "cosine"
    epochs: int = 300
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("cosine", "linear"):
            raise ValueError(f"head kind must be 'cosine' or 'linear', got {self.kind!r}")


@dataclass(frozen=True)
class TrainingGroups:
    """Identity-disjoint groups of the adversarial-training study, ``images`` chips each."""

    train_identities: int
    holdout_identities: int
    images: int
    validation_identities: int = 0

    @property
    def total(self) -> int:
        return self.train_identities + self.holdout_identities + self.validation_identities

    def assign(self, names: list[str]) -> dict[str, list[str]]:
        """The drawn ``names`` cut into the train, holdout and validation groups."""
        t, h = self.train_identities, self.holdout_identities
        return {"train": names[:t], "holdout": names[t:t + h], "validation": names[t + h:]}


def train_identification_head(*, model: str, source: DataSource, options: HeadOptions,
                              out: Path, progress: bool = True) -> HeadTrainingResult:
    """Split identities (any dataset layout), embed, train the head, measure held-out top-1,
    save the head to ``out`` (its report and split inside); returns the typed result."""

    o = options
    dataset = source.open()
    root = dataset.root
    split = identity_split(dataset.people, identities=o.identities, images=o.images,
                           gallery=o.gallery, min_images=o.min_images, seed=o.seed)
    net = models.load(model)
    emb, skipped = embed_paths(net, [*split.train_paths, *split.probe_paths], progress=progress)

    def stack(paths: list[Path], labels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        kept = [(p, y) for p, y in zip(paths, labels, strict=True) if p in emb]
        return (torch.stack([emb[p] for p, _ in kept]),
                torch.tensor([y for _, y in kept], dtype=torch.long))

    xt, yt = stack(split.train_paths, split.train_labels)
    xp, yp = stack(split.probe_paths, split.probe_labels)
    head = train_head(xt, yt, n_classes=len(split.names), kind=o.kind, epochs=o.epochs,
                      seed=o.seed)
    with torch.no_grad():
        train_acc = Rate.of(head(xt).argmax(1) == yt)
        top1 = Rate.of(head(xp).argmax(1) == yp)
    result = HeadTrainingResult(
        model=model, dataset=str(root), head=o.kind, head_file=out.name, epochs=o.epochs,
        seed=o.seed, identities=len(split.names), images_per_identity=o.images,
        gallery_per_identity=o.gallery, min_images=o.min_images, n_train=len(yt),
        n_probe=len(yp), train_accuracy=train_acc, probe_top1=top1, skipped=skipped)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_identification(out, model_name=model, kind=o.kind, head=head, names=split.names,
                        split=split.to_dict(root), report=head_report(result))
    return result


def head_report(result: HeadTrainingResult) -> dict[str, Any]:
    """The training report as train-head printed and saved it before the result wrapper
    (``kind`` is the head's kind there)."""
    doc = result.to_dict()
    doc["kind"] = doc.pop("head")
    doc.pop("head_file")
    doc["skipped_count"] = len(result.skipped)
    return doc


def adversarial_training_study(*, model: str, source: DataSource, groups: TrainingGroups,
                               training: FinetuneOptions, judge: bool = False
                               ) -> tuple[TrainingReport, AdvTrainResult, nn.Module]:
    """PGD adversarial fine-tuning (``training``; its seed also draws the groups) on
    ``train_identities`` people of the dataset (any layout), judged on
    ``holdout_identities`` others (identity-disjoint, seeded draw); with
    ``validation_identities`` a third disjoint group picks the best epoch; with ``judge`` the
    original and tuned models are both judged on conditions (a)-(d)
    (:func:`facerobust.defenses.hardening.hardening_evaluation`). Returns the training
    report, the typed result (kind ``adv-train``) and the tuned model."""

    dataset = source.open()
    people, owner = dataset.people, identity_of(dataset)
    images, seed = groups.images, training.seed
    names = choose_identities(people, count=groups.total, min_images=images, seed=seed)
    if len(names) < groups.total:
        raise ValueError(f"only {len(names)} identities have >= {images} images; asked for "
                         f"{groups.train_identities} + {groups.holdout_identities} + "
                         f"{groups.validation_identities}")
    chosen = groups.assign(names)

    def chips_for(group: list[str], offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        paths = [p for n in group for p in sorted(people[n])[:images]]
        chipset = load_chips(paths, progress=True)
        labels = [offset + group.index(owner[p]) for p in chipset.paths]
        return chipset.chips, torch.as_tensor(labels)

    train = chips_for(chosen["train"], 0)
    holdout = chips_for(chosen["holdout"], groups.train_identities)
    validation = chips_for(chosen["validation"],
                           groups.train_identities + groups.holdout_identities) \
        if groups.validation_identities else None
    original = models.load(model)
    tuned, report = adversarial_finetune(original, *train, training, holdout=holdout,
                                         validation=validation)
    judged = judge_hardening(original, tuned, holdout, eps=training.eps, steps=training.steps,
                             seed=seed) if judge else None
    result = AdvTrainResult(model=model, train_identities=chosen["train"],
                            holdout_identities=chosen["holdout"],
                            validation_identities=chosen["validation"],
                            training=report.to_dict(), judged=judged)
    return report, result, tuned


def judge_hardening(original: Any, tuned: Any, holdout: tuple[torch.Tensor, torch.Tensor], *,
                    eps: float, steps: int, seed: int) -> JudgedHardening:
    """Conditions (a)-(d) before (original) and after (tuned) on the held-out identities."""

    settings = {"larger": 2.0, "cw_l2": 0.5, "adaptive_steps": 40, "restarts": 2}
    options = HardeningOptions(eps=eps, steps=steps, seed=seed, **settings)  # type: ignore[arg-type]
    before = hardening_evaluation(original, *holdout, options)
    after = hardening_evaluation(tuned, *holdout, options)
    labels = describe_conditions(eps, steps, **settings)  # type: ignore[arg-type]
    return JudgedHardening(
        eps=eps, steps=steps, settings=settings,
        conditions={key: JudgedCondition(condition=labels[key], before=before[key],
                                         after=after[key]) for key in before})
