"""A defended model is just a model: ``DefendedModel(model, defense)``.

Attacks never know about defenses. What an attack "sees" is chosen when the module is built:

* ``gradient="autograd"`` (default): forward and backward both go through the real defense.
  For JPEG / bit depth / TVM that gradient is exactly zero (see
  :class:`~facerobust.defenses.base.Defense`). This is the deployed system.
* ``gradient="bpda"``: forward is the real defense, backward uses each transform's
  differentiable approximation (straight-through for the quantisers).
* ``eot_samples=n`` (> 1): the output is the mean over ``n`` independent draws of the
  defense's randomness (Expectation over Transformation, Athalye et al. 2018); its gradient is
  the mean of the per-draw gradients.

>>> import torch
>>> from facerobust.defenses import DefendedModel, adaptive, parse_defense
>>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
>>> defended = DefendedModel(net, parse_defense("jpeg:q=50"))
>>> attackable = adaptive(defended, eot_samples=4)   # BPDA + EOT, same forward semantics
>>> attackable(torch.rand(2, 3, 8, 8)).shape
torch.Size([2, 4])
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from facerobust.defenses.base import Defense
from facerobust.models.base import FaceModel, pair_distance

Gradient = Literal["autograd", "bpda"]
DEFAULT_EOT = 8


class DefendedModel(FaceModel):
    """``model(defense(x))`` exposing the wrapped model's FaceModel attributes.

    ``name``, ``input_size``, ``embedding_dim``, ``metric`` and ``threshold`` are copied from
    ``model`` (when it has them); ``distance`` delegates to ``model.distance``.
    """

    def __init__(self, model: nn.Module, defense: Defense, *, gradient: Gradient = "autograd",
                 eot_samples: int = 1) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if not isinstance(defense, Defense):
            raise TypeError(f"defense must be a Defense, got {type(defense).__name__}")
        if gradient not in ("autograd", "bpda"):
            raise ValueError(f"gradient must be 'autograd' or 'bpda', got {gradient!r}")
        if isinstance(eot_samples, bool) or not isinstance(eot_samples, int) or eot_samples < 1:
            raise ValueError(f"eot_samples must be an int >= 1, got {eot_samples!r}")
        self.model = model
        self.defense = defense
        self.gradient: Gradient = gradient
        self.eot_samples = eot_samples
        base = getattr(model, "name", type(model).__name__)
        self.name = f"{base}+{defense.spec}"
        for attr in ("input_size", "embedding_dim", "metric", "threshold"):
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))

    def _once(self, x: torch.Tensor) -> torch.Tensor:
        z = self.defense.bpda(x) if self.gradient == "bpda" else self.defense(x)
        return self.model(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.eot_samples == 1:
            return self._once(x)
        total = self._once(x)
        for _ in range(self.eot_samples - 1):
            total = total + self._once(x)
        return total / self.eot_samples

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        inner = getattr(self.model, "distance", None)
        if callable(inner):
            return inner(a, b)
        return pair_distance(a, b, self.metric)

    @property
    def mode(self) -> str:
        """Short label of what the gradient is, e.g. ``"autograd"``, ``"bpda+eot8"``."""
        return self.gradient + (f"+eot{self.eot_samples}" if self.eot_samples > 1 else "")

    def extra_repr(self) -> str:
        return f"gradient={self.mode}"


def adaptive(defended: DefendedModel, *, eot_samples: int | None = None) -> DefendedModel:
    """The adaptive-attack view of ``defended``: BPDA gradients, and EOT over ``eot_samples``
    draws (default: 8 for randomised defenses, 1 otherwise). Shares the same modules."""
    if not isinstance(defended, DefendedModel):
        raise TypeError(f"adaptive() takes a DefendedModel, got {type(defended).__name__}")
    if eot_samples is None:
        eot_samples = DEFAULT_EOT if defended.defense.randomized else 1
    return DefendedModel(defended.model, defended.defense, gradient="bpda",
                         eot_samples=eot_samples)
