"""Train and save a closed-set identification head over the shared identification split
(:func:`facerobust.eval.tasks.identity_split`), as ``facerobust train-head`` does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from facerobust import models
from facerobust.core.stats import Rate
from facerobust.data import resolve_dataset
from facerobust.data.chips import load_chips
from facerobust.data.sources import open_dataset
from facerobust.defenses.hardening import (
    HardeningOptions,
    describe_conditions,
    hardening_evaluation,
)
from facerobust.defenses.training import FinetuneOptions, adversarial_finetune
from facerobust.eval.results_study import JUDGED_SCHEMA, JudgedCondition, JudgedHardening
from facerobust.eval.store import write_json_atomic
from facerobust.eval.tasks import choose_identities, embed_paths, identity_split
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


def train_identification_head(*, model: str, dataset: str, data: Path | str | None,
                              options: HeadOptions, out: Path,
                              progress: bool = True) -> dict[str, Any]:
    """Split identities, embed, train the head, measure held-out top-1, save to ``out``
    (plus ``out`` with suffix ``.json``); returns the training report."""

    o = options
    kind, epochs, seed, images, gallery = o.kind, o.epochs, o.seed, o.images, o.gallery
    min_images = o.min_images
    name = "lfw-gray" if dataset == "lfw" else dataset
    root = resolve_dataset(name, data)
    split = identity_split(open_dataset(root).people, identities=o.identities, images=images,
                           gallery=gallery, min_images=min_images, seed=seed)
    net = models.load(model)
    emb, skipped = embed_paths(net, [*split.train_paths, *split.probe_paths], progress=progress)

    def stack(paths: list[Path], labels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        kept = [(p, y) for p, y in zip(paths, labels, strict=True) if p in emb]
        return (torch.stack([emb[p] for p, _ in kept]),
                torch.tensor([y for _, y in kept], dtype=torch.long))

    xt, yt = stack(split.train_paths, split.train_labels)
    xp, yp = stack(split.probe_paths, split.probe_labels)
    head = train_head(xt, yt, n_classes=len(split.names), kind=kind, epochs=epochs, seed=seed)
    with torch.no_grad():
        train_acc = Rate.of(head(xt).argmax(1) == yt)
        top1 = Rate.of(head(xp).argmax(1) == yp)
    report = {"model": model, "dataset": str(root), "kind": kind, "epochs": epochs,
              "seed": seed, "identities": len(split.names), "images_per_identity": images,
              "gallery_per_identity": gallery, "min_images": min_images,
              "n_train": len(yt), "n_probe": len(yp), "train_accuracy": train_acc.to_dict(),
              "probe_top1": top1.to_dict(), "skipped_count": len(skipped),
              "skipped": skipped}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_identification(out, model_name=model, kind=kind, head=head, names=split.names,
                        split=split.to_dict(root), report=report)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def adversarial_training_study(*, model: str, dataset: str, data: Path | str | None,
                               groups: TrainingGroups, training: FinetuneOptions, out: Path,
                               judge: bool = False) -> Any:
    """PGD adversarial fine-tuning (``training``; its seed also draws the groups) on
    ``train_identities`` people, judged on
    ``holdout_identities`` others (identity-disjoint, seeded draw); with
    ``validation_identities`` a third disjoint group picks the best epoch; with ``judge`` the
    original and tuned models are both judged on conditions (a)-(d)
    (:func:`facerobust.defenses.hardening.hardening_evaluation`). Writes
    ``out/training.json`` and ``out/model.pt``; returns (training report, the JSON dict)."""

    people = open_dataset(resolve_dataset(dataset, data)).people
    train_identities, holdout_identities = groups.train_identities, groups.holdout_identities
    validation_identities, images = groups.validation_identities, groups.images
    eps, steps, seed = training.eps, training.steps, training.seed
    names = choose_identities(people, count=groups.total, min_images=images, seed=seed)
    if len(names) < groups.total:
        raise ValueError(f"only {len(names)} identities have >= {images} images; asked for "
                         f"{train_identities} + {holdout_identities} + {validation_identities}")
    chosen = {"train": names[:train_identities],
              "holdout": names[train_identities:train_identities + holdout_identities],
              "validation": names[train_identities + holdout_identities:]}

    def chips_for(chosen: list[str], offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        paths = [p for n in chosen for p in sorted(people[n])[:images]]
        chipset = load_chips(paths, progress=True)
        labels = [offset + chosen.index(p.parent.name) for p in chipset.paths]
        return chipset.chips, torch.as_tensor(labels)

    train = chips_for(chosen["train"], 0)
    holdout = chips_for(chosen["holdout"], train_identities)
    validation = chips_for(chosen["validation"], train_identities + holdout_identities) \
        if validation_identities else None
    original = models.load(model)
    tuned, report = adversarial_finetune(original, *train, training, holdout=holdout,
                                         validation=validation)
    out.mkdir(parents=True, exist_ok=True)
    result = {"model": model, "train_identities": chosen["train"],
              "holdout_identities": chosen["holdout"],
              "validation_identities": chosen["validation"], **report.to_dict()}
    if judge:
        result["judged"] = judge_hardening(original, tuned, holdout, eps=eps, steps=steps,
                                           seed=seed).to_dict()
    write_json_atomic(out / "training.json", result)
    torch.save(tuned.state_dict(), out / "model.pt")
    return report, result


def judge_hardening(original: Any, tuned: Any, holdout: tuple[torch.Tensor, torch.Tensor], *,
                    eps: float, steps: int, seed: int) -> JudgedHardening:
    """Conditions (a)-(d) before (original) and after (tuned) on the held-out identities."""

    settings = {"larger": 2.0, "cw_l2": 0.5, "adaptive_steps": 40, "restarts": 2}
    options = HardeningOptions(eps=eps, steps=steps, seed=seed, **settings)  # type: ignore[arg-type]
    before = hardening_evaluation(original, *holdout, options)
    after = hardening_evaluation(tuned, *holdout, options)
    labels = describe_conditions(eps, steps, **settings)  # type: ignore[arg-type]
    return JudgedHardening(
        schema_version=JUDGED_SCHEMA, eps=eps, steps=steps, settings=settings,
        conditions={key: JudgedCondition(condition=labels[key], before=before[key],
                                         after=after[key]) for key in before})
