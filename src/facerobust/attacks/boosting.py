"""Transfer-boosting iterative attacks: DI-, TI-, NI- and MI-DI-TI-FGSM.

One iterative FGSM family with the tricks that make adversarials transfer to *other* models:

* momentum (``decay``; Dong et al., "Boosting Adversarial Attacks with Momentum", CVPR 2018),
* Nesterov look-ahead (``nesterov``; Lin et al., "Nesterov Accelerated Gradient and Scale
  Invariance for Adversarial Attacks", ICLR 2020),
* input diversity (``diversity`` = probability of a random shrink-and-pad of the chip before
  each gradient; Xie et al., "Improving Transferability of Adversarial Examples with Input
  Diversity", CVPR 2019),
* translation invariance (``ti_kernel`` = size of the Gaussian kernel the gradient is smoothed
  with; Dong et al., "Evading Defenses to Transferable Adversarial Examples by
  Translation-Invariant Attacks", CVPR 2019).

Every step is run (no early stopping: these attacks are meant for full-budget adversarials);
the final iterate is returned and judged by one forward on the undiversified input. Step
size ``eps / steps``; Linf uses sign steps, L2 normalised ones.

>>> from facerobust.attacks.registry import build_attack
>>> attack = build_attack("mditifgsm", norm="linf", steps=10)
>>> result = attack(net, probes, crit, epsilons=[8/255])              # doctest: +SKIP
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from facerobust.attacks.base import (
    FixedEpsilonAttack,
    Norm,
    Tally,
    check_norm,
    check_positive,
    clip_perturbation,
    forward,
    normalized,
    per_sample,
)
from facerobust.attacks.criteria import Criterion

DI_LOW = 0.9  # input diversity shrinks the chip to [0.9, 1.0] of its size, then pads back


def gaussian_kernel(size: int) -> torch.Tensor:
    """A normalised (size x size) Gaussian, sigma = size / 4 (TI-FGSM's smoothing)."""
    ax = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(ax**2) / (2 * (size / 4) ** 2))
    k = g[:, None] * g[None, :]
    return k / k.sum()


def diverse(x: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """With probability ``p`` (once per batch) shrink ``x`` to a random size in
    [DI_LOW, 1) x H and zero-pad it back at a random offset (differentiable)."""
    if p <= 0 or torch.rand((), generator=generator).item() >= p:
        return x
    h, w = x.shape[-2:]
    side = int(torch.randint(min(math.ceil(DI_LOW * h), h - 1), h, (), generator=generator))
    small = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    top = int(torch.randint(0, h - side + 1, (), generator=generator))
    left = int(torch.randint(0, w - side + 1, (), generator=generator))
    return F.pad(small, (left, w - side - left, top, h - side - top))


class BoostedFGSM(FixedEpsilonAttack):
    """Iterative FGSM with momentum, Nesterov, input diversity and/or translation invariance."""

    def __init__(self, *, norm: Norm = "linf", steps: int = 10, decay: float = 1.0,
                 nesterov: bool = False, diversity: float = 0.0, ti_kernel: int = 0) -> None:
        self.norm = check_norm(norm)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        check_positive("decay", decay, allow_zero=True)
        if not 0.0 <= diversity <= 1.0:
            raise ValueError(f"diversity must be a probability in [0, 1], got {diversity}")
        if isinstance(ti_kernel, bool) or not isinstance(ti_kernel, int) or ti_kernel < 0 \
                or (ti_kernel and ti_kernel % 2 == 0):
            raise ValueError(f"ti_kernel must be 0 (off) or an odd size, got {ti_kernel!r}")
        self.steps, self.decay, self.nesterov = steps, float(decay), bool(nesterov)
        self.diversity, self.ti_kernel = float(diversity), ti_kernel

    def _gradient(self, model: nn.Module, x: torch.Tensor, criterion: Criterion,
                  generator: torch.Generator | None) -> torch.Tensor:
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            out = model(diverse(x, self.diversity, generator))
            (grad,) = torch.autograd.grad(criterion.loss(out).sum(), x)
        if self.ti_kernel:
            k = gaussian_kernel(self.ti_kernel).to(grad)[None, None]
            grad = F.conv2d(grad, k.expand(grad.shape[1], 1, -1, -1),
                            padding=self.ti_kernel // 2, groups=grad.shape[1])
        return grad

    def perturb(
        self,
        model: nn.Module,
        x: torch.Tensor,
        criterion: Criterion,
        eps: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        tally: Tally | None = None,
        index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        step = per_sample(eps.to(x.device, x.dtype) / self.steps, x)
        adv, momentum = x.clone(), torch.zeros_like(x)
        for _ in range(self.steps):
            point = adv + step * self.decay * normalized(momentum, self.norm) \
                if self.nesterov else adv
            grad = self._gradient(model, point, criterion, generator)
            if tally is not None:
                tally.add(index)
            grad = grad / (grad.abs().flatten(1).mean(dim=1).view(-1, 1, 1, 1) + 1e-12)
            momentum = self.decay * momentum + grad
            adv = clip_perturbation(x, adv + step * normalized(momentum, self.norm), eps,
                                    self.norm)
        out = forward(model, adv, criterion)
        if tally is not None:
            tally.add(index)
        return adv, criterion.is_adversarial(out)
