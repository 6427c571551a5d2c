"""Probes, criteria and scores for ``facerobust attack`` (LFW pairs or an identification head)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

MIN_IMAGES = 10  # people with at least this many images form the closed identification set
PROBES_PER_PERSON = 2


@dataclass
class AttackTask:
    """Everything the CLI needs to attack ``x`` and score the outcome."""

    model: nn.Module
    x: torch.Tensor
    criterion: Any
    score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    score_name: str
    before: torch.Tensor
    starting_points: torch.Tensor | None = None
    skipped: list[Any] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def _embed(model: nn.Module, chips: torch.Tensor, batch: int = 32) -> torch.Tensor:
    dev = next(iter(model.parameters())).device
    return torch.cat([model(chips[i : i + batch].to(dev)).cpu()
                      for i in range(0, len(chips), batch)])


def prepare(goal: str, model: nn.Module, root: Path, *, n: int, seed: int,
            progress: bool) -> AttackTask:
    if goal in ("dodging", "impersonation"):
        return _verification(goal, model, root, n=n, seed=seed, progress=progress)
    if goal in ("untargeted", "targeted"):
        return _identification(goal, model, root, n=n, seed=seed, progress=progress)
    raise ValueError(f"unknown goal {goal!r}")


def _verification(goal: str, model: nn.Module, root: Path, *, n: int, seed: int,
                  progress: bool) -> AttackTask:
    from facerobust.attacks import Dodging, Impersonation
    from facerobust.data.chips import load_chips
    from facerobust.data.lfw import LFWPairs

    same = goal == "dodging"
    pairs = [p for p in LFWPairs(root).pairs if p.same == same]
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed)).tolist()
    pairs = [pairs[i] for i in order[: min(len(pairs), 2 * n + 20)]]
    chips = load_chips([q for p in pairs for q in (p.path_a, p.path_b)], progress=progress)
    usable = [p for p in pairs if p.path_a in chips.index and p.path_b in chips.index]
    a = chips.chips[[chips.index[p.path_a] for p in usable]]
    b = chips.chips[[chips.index[p.path_b] for p in usable]]
    ea, eb = _embed(model, a), _embed(model, b)
    dist = model.distance(ea, eb)
    # attack only pairs the model gets right: accepted genuine / rejected impostor pairs
    ok = (dist <= model.threshold) if same else (dist > model.threshold)
    keep = ok.nonzero()[:, 0][:n]
    crit_cls = Dodging if same else Impersonation
    dev = next(iter(model.parameters())).device
    ref = eb[keep].to(dev)
    criterion = crit_cls.for_model(model, ref)

    def score(out: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return model.distance(out, ref[idx.to(dev)]).cpu()

    return AttackTask(
        model=model, x=a[keep].to(dev), criterion=criterion,
        score=score, score_name="distance", before=dist[keep],
        starting_points=None if same else b[keep].to(dev), skipped=chips.skipped,
        info={"threshold": float(model.threshold), "metric": model.metric,
              "pairs": "matched" if same else "mismatched",
              "n_pairs_considered": len(usable),
              "n_excluded_clean_errors": int((~ok).sum()),
              "probes": [[str(usable[i].path_a), str(usable[i].path_b)] for i in keep.tolist()],
              "criterion": criterion.describe()},
    )


def _identification(goal: str, model: nn.Module, root: Path, *, n: int, seed: int,
                    progress: bool) -> AttackTask:
    from facerobust.attacks import Misclassification, TargetedMisclassification
    from facerobust.data.chips import load_chips
    from facerobust.data.lfw import LFWPairs
    from facerobust.models.heads import IdentificationModel, train_head

    people = {k: v for k, v in LFWPairs(root).people().items() if len(v) >= MIN_IMAGES}
    names = sorted(people)
    chips = load_chips([p for k in names for p in people[k]], progress=progress)
    enrol, probe = [], []
    for label, k in enumerate(names):
        have = [p for p in people[k] if p in chips.index]
        probe += [(p, label) for p in have[-PROBES_PER_PERSON:]]
        enrol += [(p, label) for p in have[:-PROBES_PER_PERSON]]
    emb = _embed(model, chips.chips[[chips.index[p] for p, _ in enrol]])
    head = train_head(emb, torch.tensor([lab for _, lab in enrol]), n_classes=len(names),
                      seed=seed)
    clf = IdentificationModel(model, head, names=names).eval()
    px = chips.chips[[chips.index[p] for p, _ in probe]]
    py = torch.tensor([lab for _, lab in probe])
    with torch.no_grad():
        logits = torch.cat([clf(px[i : i + 32]) for i in range(0, len(px), 32)])
    ok = logits.argmax(1) == py
    order = torch.randperm(len(py), generator=torch.Generator().manual_seed(seed))
    keep = order[ok[order]][:n]
    labels = py[keep]
    if goal == "untargeted":
        criterion: Any = Misclassification(labels)
        scored = labels
    else:
        shift = torch.randint(1, len(names), (len(keep),),
                              generator=torch.Generator().manual_seed(seed + 1))
        scored = (labels + shift) % len(names)
        criterion = TargetedMisclassification(scored)

    def score(out: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        p = out.softmax(1).cpu()
        return p.gather(1, scored[idx][:, None])[:, 0]

    return AttackTask(
        model=clf, x=px[keep], criterion=criterion, score=score,
        score_name="true_class_prob" if goal == "untargeted" else "target_prob",
        before=logits[keep].softmax(1).gather(1, scored[:, None])[:, 0],
        skipped=chips.skipped,
        info={"identities": len(names), "enrolment_images": len(enrol),
              "probe_images": len(probe), "clean_accuracy": float(ok.float().mean()),
              "n_excluded_clean_errors": int((~ok).sum())},
    )
