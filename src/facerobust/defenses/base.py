"""The :class:`Defense` contract: an ``nn.Module`` preprocessor on canonical chips.

A defense maps a float NCHW batch in ``[0, 1]`` to a batch of the *same shape* in ``[0, 1]``.
Three ways to push gradients through it (used by :class:`~facerobust.defenses.DefendedModel`):

* ``forward(x)`` -- the real transform. For non-differentiable transforms (JPEG, bit depth,
  TV minimisation) the result is ``y.detach() + 0 * x``: exactly the *zero* gradient a naive
  attacker gets from autograd (an honest picture of gradient masking, never ``None``).
* ``approximation(x)`` -- a differentiable surrogate ``g`` with ``g(x) ~ forward(x)``
  (identity for the quantisers: straight-through).
* ``bpda(x)`` -- Backward Pass Differentiable Approximation (Athalye, Carlini & Wagner,
  *Obfuscated Gradients Give a False Sense of Security*, ICML 2018): the value of
  ``forward(x)`` with the gradient of ``approximation(x)``.

Randomised defenses draw from ``self.generator`` (a CPU ``torch.Generator``; ``None`` = the
global RNG), so evaluations can be seeded.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Defense(nn.Module):
    """Base class. Subclasses set ``name`` and implement ``transform`` (and ``params``)."""

    name: str = "defense"
    #: the transform draws random numbers (needs EOT to attack)
    randomized: bool = False
    #: autograd through ``forward`` gives a useful (non-zero) gradient
    differentiable: bool = True

    def __init__(self) -> None:
        super().__init__()
        self.generator: torch.Generator | None = None

    # -- to implement ---------------------------------------------------------------------
    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The transform itself; may run without autograd when ``differentiable`` is False."""
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """Hyperparameters as a JSON-serialisable dict (the ``k=v`` part of the spec)."""
        return {}

    # -- provided ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x)
        if self.differentiable:
            return self.transform(x)
        with torch.no_grad():
            y = self.transform(x.detach())
        return y.detach() + 0.0 * x  # zero gradient: what autograd gives a naive attacker

    def approximation(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable surrogate used on the backward pass by BPDA (default: identity)."""
        return self.transform(x) if self.differentiable else x

    def bpda(self, x: torch.Tensor) -> torch.Tensor:
        """Forward value of the defense, gradient of :meth:`approximation`."""
        if self.differentiable:
            return self.forward(x)
        approx = self.approximation(x)
        with torch.no_grad():
            y = self.transform(x.detach())
        return approx + (y - approx).detach()

    @property
    def spec(self) -> str:
        """Canonical spec string, e.g. ``"jpeg:q=75"`` (parsed by ``parse_defense``)."""
        params = self.params()
        if not params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={_fmt(v)}" for k, v in params.items())

    def extra_repr(self) -> str:
        return self.spec

    def set_generator(self, generator: torch.Generator | None) -> Defense:
        """Use ``generator`` for all random draws (also in nested defenses)."""
        for module in self.modules():
            if isinstance(module, Defense):
                module.generator = generator
        return self


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _check_batch(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"a defense expects a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"a defense expects a float tensor in [0, 1], got dtype {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"a defense expects a (N, C, H, W) batch, got shape {tuple(x.shape)}")


class Identity(Defense):
    """No defense (the baseline row of every table)."""

    name = "none"

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Compose(Defense):
    """Apply defenses left to right (spec ``"jpeg:q=75+median:k=3"``).

    BPDA composes stage by stage: each stage keeps its own forward value and contributes its
    own approximation's gradient.
    """

    name = "compose"

    def __init__(self, defenses: list[Defense]) -> None:
        super().__init__()
        if len(defenses) < 2:
            raise ValueError(f"Compose needs at least 2 defenses, got {len(defenses)}")
        for d in defenses:
            if not isinstance(d, Defense):
                raise TypeError(f"Compose takes Defense modules, got {type(d).__name__}")
        self.stages = nn.ModuleList(defenses)
        self.randomized = any(d.randomized for d in defenses)
        self.differentiable = all(d.differentiable for d in defenses)

    def _stages(self) -> list[Defense]:
        return [s for s in self.stages if isinstance(s, Defense)]

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self._stages():
            x = stage.transform(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch(x)
        for stage in self._stages():
            x = stage(x)
        return x

    def approximation(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self._stages():
            x = stage.approximation(x)
        return x

    def bpda(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self._stages():
            x = stage.bpda(x)
        return x

    def params(self) -> dict[str, Any]:
        return {f"{i}.{s.name}": s.params() for i, s in enumerate(self._stages())}

    @property
    def spec(self) -> str:
        return "+".join(s.spec for s in self._stages())
