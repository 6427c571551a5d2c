"""Defensive-distillation study for identification: a plain linear head and a defensively
distilled one over the same embedder and split (:func:`facerobust.core.splits.identity_split`,
any dataset layout),
each attacked by naive PGD, PGD on the logits and Carlini-Wagner L2 on the logits.

>>> report = defensive_distillation_study(model="dlib-resnet", root=root)   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from facerobust import models
from facerobust.core.embedding import embed
from facerobust.core.splits import identity_split
from facerobust.core.stats import Rate
from facerobust.data.chips import load_chips
from facerobust.data.sources import Dataset
from facerobust.defenses.defensive_distillation import attack_rates, distill_head
from facerobust.eval.datasource import DataSource, as_dataset
from facerobust.eval.results_study import DefensiveHead, DefensiveResult
from facerobust.eval.tasks import rows_for, spread
from facerobust.models.heads import IdentificationModel, train_head


@dataclass(frozen=True)
class DefensiveOptions:
    """The split (``identities`` x ``images``, ``gallery`` enrolled), the distillation
    ``temperature`` and ``head_epochs``, and the attacks: PGD-``steps`` at ``eps`` and CW with
    ``cw_steps`` judged at L2 ``cw_l2``, on ``probes`` probe images."""

    identities: int = 20
    images: int = 10
    gallery: int = 5
    temperature: float = 100.0
    eps: float = 2 / 255
    steps: int = 10
    cw_l2: float = 1.0
    cw_steps: int = 30
    probes: int = 40
    head_epochs: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("identities", "steps", "cw_steps", "probes", "head_epochs"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.temperature < 1 or self.cw_l2 <= 0:
            raise ValueError(f"temperature must be >= 1 and cw_l2 > 0, got "
                             f"{self.temperature} and {self.cw_l2}")


def defensive_distillation_study(*, model: str | nn.Module,
                                 root: Dataset | DataSource | Path | str,
                                 options: DefensiveOptions | None = None,
                                 progress: bool = True) -> DefensiveResult:
    """Train both heads on the enrolment images of the dataset ``root`` (any layout), attack
    ``probes`` held-out probe images each head classifies correctly; every rate with k/n and a
    95% CI."""
    o = options or DefensiveOptions()
    identities, images, gallery, temperature = o.identities, o.images, o.gallery, o.temperature
    eps, steps, cw_l2, cw_steps, probes = o.eps, o.steps, o.cw_l2, o.cw_steps, o.probes
    head_epochs, seed = o.head_epochs, o.seed

    dataset = as_dataset(root)
    split = identity_split(dataset.people, identities=identities, images=images,
                           gallery=gallery, min_images=images, seed=seed)
    net = models.load(model) if isinstance(model, str) else model
    net.eval().requires_grad_(False)
    chips = load_chips([*split.train_paths, *split.probe_paths], cache=True, progress=progress)
    emb = embed(net, chips.chips)
    tr, ytr = rows_for(split.train_paths, split.train_labels, chips.index)
    pr, ypr = rows_for(split.probe_paths, split.probe_labels, chips.index)
    n_classes = len(split.names)
    plain = train_head(emb[torch.as_tensor(tr)], torch.as_tensor(ytr), n_classes=n_classes,
                       kind="linear", seed=seed)
    _, distilled = distill_head(emb[torch.as_tensor(tr)], torch.as_tensor(ytr),
                                n_classes=n_classes, temperature=temperature,
                                epochs=head_epochs, seed=seed)
    keep = spread(torch.arange(len(pr)).numpy(), probes)
    x = chips.chips[torch.as_tensor(pr[keep])]
    y = torch.as_tensor(ypr[keep])
    heads = {}
    for name, head in (("plain", plain), ("distilled", distilled)):
        ident = IdentificationModel(net, head, names=split.names).eval()
        with torch.no_grad():
            top1 = (head(emb[torch.as_tensor(pr)]).argmax(1).numpy() == ypr)
        rates = attack_rates(ident, x, y, eps=eps, steps=steps, cw_l2=cw_l2,
                             cw_steps=cw_steps, seed=seed)
        heads[name] = DefensiveHead(probe_top1=Rate.of(top1), **rates)
    return DefensiveResult(
        model=model if isinstance(model, str) else type(model).__name__,
        dataset=str(dataset.root),
        identities=n_classes, n_train=len(tr), n_probe=len(pr), temperature=temperature,
        eps=eps, pgd_steps=steps, cw_l2_budget=cw_l2, cw_steps=cw_steps,
        head_epochs=head_epochs, seed=seed, heads=heads)


def format_defensive(report: DefensiveResult) -> str:
    lines = [f"defensive distillation (T={report.temperature:g}) on {report.model}, "
             f"{report.identities} identities; eps {255 * report.eps:.1f}/255, "
             f"CW L2 budget {report.cw_l2_budget:g}"]
    for name, h in report.heads.items():
        lines.append(f"{name}: probe top-1 {h.probe_top1.text()}, mean logit gap "
                     f"{h.mean_top_logit_gap:.1f}")
        for key in ("zero_gradient", "naive_pgd", "logit_pgd", "cw_l2_logits",
                    "cw_l2_unbounded"):
            value = getattr(h, key)
            if value is not None:
                lines.append(f"  {key:<16} {value.text()}")
    return "\n".join(lines)
