"""Shared machinery: validation, norms and projection, the result type and the attack bases.

Two kinds of attack:

* :class:`FixedEpsilonAttack` (FGSM, PGD, MI-FGSM, Square) searches inside an eps-ball. For a
  list of epsilons it runs from the smallest up and only re-attacks samples that have not yet
  succeeded: an adversarial found within a smaller ball is also within every larger one, so the
  success rate is non-decreasing in eps by construction and no compute is spent twice.
* :class:`MinimizationAttack` (CW-L2, DeepFool, HopSkipJump) looks for the smallest
  perturbation once; each epsilon then clips it to the eps-ball and re-checks success.

Model passes are counted per sample (``AttackResult.passes`` = sum over forward calls of the
batch size; a forward+backward counts as one pass). Black-box attacks also report per-sample
``queries``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, TypeVar

import torch
from torch import nn

from facerobust.attacks.criteria import Criterion
from facerobust.attacks.threat import LINF, L2Ball, LinfBall, Threat, supported, threat_for

Opts = TypeVar("Opts", bound="AttackOptions")

# (raw adversarials per epsilon, clipped adversarials per epsilon, success (n_eps, N))
RunOutput = tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]


class Minimized(NamedTuple):
    """A minimisation attack's adversarials and, where it knows it without another pass, which
    of them a forward already judged adversarial (``known``; False = not known, judged later)."""

    adv: torch.Tensor
    known: torch.Tensor | None = None


# ----------------------------------------------------------------------------- validation
def check_epsilons(epsilons: Sequence[float] | float, *, allow_inf: bool = False) -> list[float]:
    """Validate a list of budgets: non-empty, each finite (or ``inf`` if allowed) and >= 0."""
    if isinstance(epsilons, (int, float)):
        raise ValueError(f"epsilons must be a list of numbers, got the scalar {epsilons!r}")
    eps = list(epsilons)
    if not eps:
        raise ValueError("epsilons is empty: give at least one budget, e.g. [8/255]")
    out = []
    for e in eps:
        if isinstance(e, bool) or not isinstance(e, (int, float)):
            raise ValueError(f"epsilon {e!r} is not a number")
        e = float(e)
        if math.isnan(e) or e < 0:
            raise ValueError(f"epsilon must be >= 0, got {e}")
        if math.isinf(e) and not allow_inf:
            raise ValueError("epsilon inf is only allowed for minimisation attacks")
        out.append(e)
    return out


def check_inputs(x: torch.Tensor, criterion: Criterion) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a float tensor in [0, 1], got dtype {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("x is an empty batch")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        raise ValueError(f"inputs must lie in [0, 1], got min {lo:.4f} max {hi:.4f}")
    if not isinstance(criterion, Criterion):
        raise ValueError(
            f"criterion must be a facerobust Criterion, got {type(criterion).__name__}"
        )
    if len(criterion) != x.shape[0]:
        raise ValueError(
            f"criterion holds {len(criterion)} samples but x has {x.shape[0]} images"
        )


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero) or math.isnan(value):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def check_int(name: str, value: int, *, least: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")


# ----------------------------------------------------------------------------- options
@dataclass(frozen=True)
class AttackOptions:
    """Base of each family's options: a frozen dataclass validated in ``__post_init__``
    (a ValueError names the field)."""

    def replace(self: Opts, **changes: Any) -> Opts:
        """A copy with ``changes``; an unknown name is a ValueError listing the known ones."""
        known = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no option {unknown[0]!r}; options: "
                             f"{', '.join(known) or 'none'}")
        return dataclasses.replace(self, **changes)

    def has(self, name: str) -> bool:
        return any(f.name == name for f in dataclasses.fields(self))


# ----------------------------------------------------------------------------- norms
# Conveniences for callers holding a threat or its name; attacks call the Threat's methods.
def flat_norm(delta: torch.Tensor, threat: Threat | str) -> torch.Tensor:
    """Per-sample norm of ``delta`` (N, ...) under ``threat`` (a Threat or its name)."""
    return threat_for(threat).norm(delta)


def project(delta: torch.Tensor, eps: torch.Tensor, threat: Threat | str) -> torch.Tensor:
    """Project each row of ``delta`` onto its eps-ball (``eps`` has shape (N,))."""
    return threat_for(threat).project(delta, eps)


def clip_perturbation(
    x: torch.Tensor, adv: torch.Tensor, eps: torch.Tensor, threat: Threat | str
) -> torch.Tensor:
    """``adv`` moved into the eps-ball around ``x`` and the [0, 1] box."""
    return threat_for(threat).clip(x, adv, eps)


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Parameters ``requires_grad_(False)`` during an attack, restored afterwards."""
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield model
    finally:
        for p, f in zip(params, flags, strict=True):
            p.requires_grad_(f)


class Tally:
    """Per-sample count of model passes (forward, or forward+backward)."""

    def __init__(self, n: int, device: torch.device) -> None:
        self.queries = torch.zeros(n, dtype=torch.long, device=device)

    def add(self, idx: torch.Tensor | None, times: int = 1) -> None:
        if idx is None:
            self.queries += times
        else:
            self.queries.index_add_(0, idx, torch.full_like(idx, times))

    @property
    def passes(self) -> int:
        return int(self.queries.sum())


def forward_with_grad(
    model: nn.Module, x: torch.Tensor, criterion: Criterion
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward+backward: the (detached) outputs and the gradient of ``criterion.loss``."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = model(x)
        criterion.check(out)
        (grad,) = torch.autograd.grad(criterion.loss(out).sum(), x)
    return out.detach(), grad


@torch.no_grad()
def forward(model: nn.Module, x: torch.Tensor, criterion: Criterion) -> torch.Tensor:
    out = model(x)
    criterion.check(out)
    return out


def low_precision(device: torch.device) -> bool:
    """Whether a low-precision autocast (bfloat16, float16) is on for ``device``."""
    return torch.is_autocast_enabled(device.type) and \
        torch.get_autocast_dtype(device.type) != torch.float32


def forward32(model: nn.Module, x: torch.Tensor, criterion: Criterion) -> torch.Tensor:
    """:func:`forward` in float32 even inside an autocast: for the verdicts that decide what an
    attack keeps or where it stops (``[run] precision = "bf16"`` crafts, float32 judges)."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        return forward(model, x, criterion)


# ----------------------------------------------------------------------------- result
@dataclass
class AttackResult:
    """Per-epsilon adversarials and success; ``success`` has shape (n_eps, N)."""

    epsilons: list[float]
    raw: list[torch.Tensor]
    clipped: list[torch.Tensor]
    success: torch.Tensor
    queries: torch.Tensor | None
    norm: str
    passes: int = 0
    attack: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

    def success_rate(self) -> list[float]:
        return self.success.float().mean(dim=1).tolist()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (no images)."""
        return {
            "attack": self.attack,
            "norm": self.norm,
            "settings": self.settings,
            "epsilons": self.epsilons,
            "success_rate": self.success_rate(),
            "n": int(self.success.shape[1]),
            "passes": self.passes,
            "mean_queries": None if self.queries is None else float(self.queries.float().mean()),
        }


# ----------------------------------------------------------------------------- attack bases
class Attack:
    """Base: ``attack(model, x, criterion, epsilons=[...], generator=None) -> AttackResult``.

    Built from a threat and the family's options: ``PGD(L2, PGDOptions(steps=5))``; a threat
    name (``"l2"``) is converted with :func:`threat_for`, and keyword fields override single
    options (``PGD("l2", steps=5)``). Use the registry's ``build_attack`` in the tool.
    """

    Options: ClassVar[type[AttackOptions]] = AttackOptions
    threats: ClassVar[tuple[type[Threat], ...]] = (LinfBall, L2Ball)  # supported threats
    default_threat: ClassVar[Threat] = LINF
    black_box: ClassVar[bool] = False
    minimization: ClassVar[bool] = False
    # under a low-precision autocast the verdicts that decide what the attack keeps or where
    # it stops are float32 forwards (CW's best, an early-stopping PGD's first success; a
    # full-budget run's last successful iterate is not), only its gradients are low precision
    float32_verdicts: ClassVar[bool] = False

    def __init__(self, threat: Threat | str | None = None,
                 options: AttackOptions | None = None, **fields: Any) -> None:
        self.threat = threat_for(self.default_threat if threat is None else threat)
        supported(self.threat, {t: t for t in self.threats}, type(self).__name__)
        base = self.Options() if options is None else options
        if not isinstance(base, self.Options):
            raise TypeError(f"{type(self).__name__} takes {self.Options.__name__}, got "
                            f"{type(base).__name__}")
        self.options = base.replace(**fields) if fields else base

    @property
    def norm(self) -> str:
        """The threat's name (what results files record)."""
        return self.threat.name

    def with_options(self, **changes: Any) -> Attack:
        """A copy with some options changed (same threat, same data such as start points)."""
        new = copy.copy(self)
        new.options = self.options.replace(**changes)
        return new

    def settings(self) -> dict[str, Any]:
        return {"norm": self.threat.name, **dataclasses.asdict(self.options)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}({args})"

    def __call__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        criterion: Criterion,
        *,
        epsilons: Sequence[float],
        generator: torch.Generator | None = None,
    ) -> AttackResult:
        eps = check_epsilons(epsilons, allow_inf=self.minimization)
        check_inputs(x, criterion)
        x = x.detach()
        tally = Tally(x.shape[0], x.device)
        with frozen(model):
            raw, clipped, success = self._run(model, x, criterion, eps, generator, tally)
        return AttackResult(
            epsilons=eps,
            raw=raw,
            clipped=clipped,
            success=success,
            queries=tally.queries.cpu() if self.black_box else None,
            norm=self.norm,
            passes=tally.passes,
            attack=type(self).__name__,
            settings=self.settings(),
        )

    def craft(
        self,
        model: nn.Module,
        x: torch.Tensor,
        criterion: Criterion,
        *,
        epsilons: Sequence[float],
        generator: torch.Generator | None = None,
    ) -> list[torch.Tensor]:
        """The adversarials per epsilon (inside each budget) without the success mask, for a
        caller that scores them itself (e.g. on other models). Attacks that judge success with
        passes of their own (FGSM) skip those passes here; the others return ``clipped``."""
        return self(model, x, criterion, epsilons=epsilons, generator=generator).clipped

    def _run(
        self,
        model: nn.Module,
        x: torch.Tensor,
        criterion: Criterion,
        eps: list[float],
        generator: torch.Generator | None,
        tally: Tally,
    ) -> RunOutput:
        raise NotImplementedError


class FixedEpsilonAttack(Attack):
    """Attacks that search inside a given eps-ball; subclasses implement :meth:`perturb`."""

    # perturb(..., margins=buffer) fills each row's criterion margin of the returned point
    reports_margins: bool = False

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
        """Attack each row with its own budget ``eps`` (N,); returns (adversarials, success).

        Adversarials are inside the eps-ball and [0, 1]. ``tally``/``index`` count passes
        against global sample indices (used by the eps sweep and the minimal-eps search).
        """
        raise NotImplementedError

    def _run(
        self,
        model: nn.Module,
        x: torch.Tensor,
        criterion: Criterion,
        eps: list[float],
        generator: torch.Generator | None,
        tally: Tally,
    ) -> RunOutput:
        n = x.shape[0]
        found = torch.zeros(n, dtype=torch.bool, device=x.device)
        best = x.clone()
        by_eps: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}
        for e in sorted(set(eps)):
            adv = best.clone()
            todo = (~found).nonzero()[:, 0]
            if len(todo):
                sub = criterion if len(todo) == n else criterion.subset(todo)
                xs = x if len(todo) == n else x[todo]
                e_t = torch.full((len(todo),), e, dtype=x.dtype, device=x.device)
                a, s = self.perturb(
                    model, xs, sub, e_t, generator=generator, tally=tally, index=todo
                )
                adv[todo] = a
                best[todo[s]] = a[s]
                found[todo[s]] = True
            by_eps[e] = (adv, found.clone())
        raw = [by_eps[e][0] for e in eps]
        success = torch.stack([by_eps[e][1] for e in eps]).cpu()
        return raw, [r.clone() for r in raw], success


class MinimizationAttack(Attack):
    """Attacks that look for a minimal perturbation once; subclasses implement :meth:`minimize`."""

    minimization = True

    def minimize(
        self,
        model: nn.Module,
        x: torch.Tensor,
        criterion: Criterion,
        *,
        generator: torch.Generator | None,
        tally: Tally,
    ) -> Minimized:
        raise NotImplementedError

    def _run(
        self,
        model: nn.Module,
        x: torch.Tensor,
        criterion: Criterion,
        eps: list[float],
        generator: torch.Generator | None,
        tally: Tally,
    ) -> RunOutput:
        """Each budget clips the one minimal adversarial; a row the clip leaves unchanged keeps
        it exactly, and its success too where ``minimize`` already judged it (no pass spent)."""
        adv, known = self.minimize(model, x, criterion, generator=generator, tally=tally)
        size = self.threat.norm(adv - x)
        raw: list[torch.Tensor] = []
        clipped: list[torch.Tensor] = []
        success: list[torch.Tensor] = []
        for e in eps:
            inside = size <= e
            c = self.threat.clip(x, adv, torch.full_like(size, e))
            c[inside] = adv[inside]
            ok = torch.zeros_like(inside) if known is None else inside & known
            todo = (~ok).nonzero()[:, 0]
            if len(todo):
                sub = criterion if len(todo) == len(ok) else criterion.subset(todo)
                ok[todo] = sub.is_adversarial(forward(model, c[todo], sub))
                tally.add(todo)
            success.append(ok)
            raw.append(adv)
            clipped.append(c)
        return raw, clipped, torch.stack(success).cpu()
