"""Ensemble surrogates: attack several face models at once (the strongest transfer source).

Liu et al., "Delving into Transferable Adversarial Examples and Black-box Attacks", ICLR 2017:
adversarials that fool an ensemble of models transfer better to an unseen one. ``Ensemble``
runs every member on the same chips and concatenates their outputs; ``EnsembleCriterion``
splits them again, averages the members' own losses (each with its own references, metric
and threshold) and calls a sample adversarial only when it fools *every* member. Any attack
of the registry runs on the pair unchanged (a defended or ensembled model is just a model).

>>> ens = Ensemble([dlib, mobileface])                                  # doctest: +SKIP
>>> crit = EnsembleCriterion([Dodging.for_model(dlib, ref_a),
...                           Dodging.for_model(mobileface, ref_b)],
...                          sizes=ens.sizes)                           # doctest: +SKIP
>>> PGD(steps=10)(ens, probes, crit, epsilons=[4/255])                  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from facerobust.attacks.criteria import Criterion


class Ensemble(nn.Module):
    """``members`` on the same input; outputs concatenated along dim 1 (widths in ``sizes``)."""

    def __init__(self, members: Sequence[nn.Module], sizes: Sequence[int]) -> None:
        super().__init__()
        if len(members) < 2 or len(members) != len(sizes):
            raise ValueError(f"an ensemble needs >= 2 members and one output width each, got "
                             f"{len(members)} members and {len(sizes)} widths")
        self.members = nn.ModuleList(members)
        self.sizes = [int(s) for s in sizes]
        self.name = "+".join(str(getattr(m, "name", type(m).__name__)) for m in members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([m(x) for m in self.members], dim=1)


class EnsembleCriterion(Criterion):
    """Members' criteria on the split ensemble output: mean loss; adversarial when every
    member's goal is met (margin = the smallest member margin)."""

    def __init__(self, criteria: Sequence[Criterion], sizes: Sequence[int]) -> None:
        if len(criteria) != len(sizes) or len(criteria) < 2:
            raise ValueError("EnsembleCriterion needs one criterion per member (>= 2)")
        lengths = {len(c) for c in criteria}
        if len(lengths) != 1:
            raise ValueError(f"member criteria hold different sample counts: {sorted(lengths)}")
        self.criteria = list(criteria)
        self.sizes = [int(s) for s in sizes]

    def _split(self, outputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(outputs, self.sizes, dim=1)

    def check(self, outputs: torch.Tensor) -> None:
        if outputs.ndim != 2 or outputs.shape[1] != sum(self.sizes):
            raise ValueError(f"EnsembleCriterion expects (N, {sum(self.sizes)}) outputs, got "
                             f"{tuple(outputs.shape)}")
        for crit, part in zip(self.criteria, self._split(outputs), strict=True):
            crit.check(part)

    def loss(self, outputs: torch.Tensor) -> torch.Tensor:
        parts = self._split(outputs)
        return torch.stack([c.loss(p) for c, p in zip(self.criteria, parts, strict=True)]
                           ).mean(0)

    def margin(self, outputs: torch.Tensor) -> torch.Tensor:
        parts = self._split(outputs)
        return torch.stack([c.margin(p) for c, p in zip(self.criteria, parts, strict=True)]
                           ).amin(0)

    def subset(self, idx: torch.Tensor) -> EnsembleCriterion:
        return EnsembleCriterion([c.subset(idx) for c in self.criteria], self.sizes)

    def __len__(self) -> int:
        return len(self.criteria[0])

    def describe(self) -> dict[str, Any]:
        return {"goal": "Ensemble", "n": len(self),
                "members": [c.describe() for c in self.criteria]}


class FusedCriterion(Criterion):
    """Score-level fusion of verification models (an ensemble used as *one* verifier): the
    fused score is the mean over members of ``distance_i / threshold_i`` and the pair is
    accepted when it is <= 1. ``criteria`` are the members' own Dodging (or Impersonation)
    criteria, all of one kind; the goal is met when the *fused* decision flips."""

    def __init__(self, criteria: Sequence[Any], sizes: Sequence[int]) -> None:
        kinds = {type(c).__name__ for c in criteria}
        if len(criteria) < 2 or len(criteria) != len(sizes) or len(kinds) != 1 \
                or not all(hasattr(c, "distance") for c in criteria):
            raise ValueError("FusedCriterion needs >= 2 verification criteria of one kind "
                             f"and one output width each, got {sorted(kinds)}")
        self.criteria = list(criteria)
        self.sizes = [int(s) for s in sizes]
        self.dodging = kinds == {"Dodging"}

    def score(self, outputs: torch.Tensor) -> torch.Tensor:
        parts = torch.split(outputs, self.sizes, dim=1)
        return torch.stack([c.distance(p) / c.thresholds(p)
                            for c, p in zip(self.criteria, parts, strict=True)]).mean(0)

    def check(self, outputs: torch.Tensor) -> None:
        if outputs.ndim != 2 or outputs.shape[1] != sum(self.sizes):
            raise ValueError(f"FusedCriterion expects (N, {sum(self.sizes)}) outputs, got "
                             f"{tuple(outputs.shape)}")

    def loss(self, outputs: torch.Tensor) -> torch.Tensor:
        s = self.score(outputs)
        return s if self.dodging else -s

    def margin(self, outputs: torch.Tensor) -> torch.Tensor:
        s = self.score(outputs)
        return s - 1.0 if self.dodging else 1.0 - s + 1e-12

    def subset(self, idx: torch.Tensor) -> FusedCriterion:
        return FusedCriterion([c.subset(idx) for c in self.criteria], self.sizes)

    def __len__(self) -> int:
        return len(self.criteria[0])
