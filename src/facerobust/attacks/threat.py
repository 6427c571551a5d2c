"""Threat models as objects: what an attacker may change, and how a budget is written.

Modelled on Foolbox's distances: a :class:`Threat` owns the per-sample norm of a
perturbation, the projection onto an eps-ball, clipping into ball and the [0, 1] pixel box,
the steepest-ascent direction, a random start, the parsing and validation of budgets and
*the* one way a budget is written. Attacks call these methods and never compare a norm name.

``LinfBall`` ("linf", budgets written ``x/255``) and ``L2Ball`` ("l2", plain numbers) are the
two threats today. The name is the external spelling in configs, JSON and on the command line;
:func:`threat_for` turns it into the object, once, at that boundary.

>>> from facerobust.attacks.threat import threat_for
>>> linf = threat_for("linf")
>>> linf.format_epsilon(linf.parse_epsilon("2/255"))
'2/255'

**Adding a threat (the hook).** Subclass :class:`Threat`, set ``name``/``title``, implement the
abstract methods and call :func:`register_threat`; every attack that only uses these methods
(FGSM, BIM, PGD, MI-FGSM, the boosted FGSMs, DeepFool, the minimal-eps search) then runs
under it unchanged, and the registry lists it for the attacks that declare it. A region (patch
or eyeglass-frame) threat -- free colours inside a fixed chip mask ``m``, no Lp bound -- would
be: ``norm`` = the Linf norm of ``delta * m`` (what the budget bounds, ``inf`` = unbounded);
``project`` = ``clamp(delta, -eps, eps) * m`` (zero outside the mask); ``direction`` =
``sign(g) * m``; ``random_start`` = uniform noise times ``m``; ``clip`` (inherited) keeps
``x + delta`` in the box; ``format_epsilon`` may print ``"free"`` for ``inf``. Attacks with
norm-specific geometry (Square, HopSkipJump, CW) say which threats they support with
:func:`supported` and refuse the others with a message naming both.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar, TypeVar

import torch

from facerobust.attacks.epsilons import parse_epsilon, parse_epsilons

T = TypeVar("T")


def _view(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``t`` (N,) shaped to broadcast over the rows of ``like`` (N, ...)."""
    return t.view(-1, *([1] * (like.ndim - 1)))


class Threat(ABC):
    """What an attacker may change about an image in [0, 1] under a budget ``eps``."""

    name: ClassVar[str]  # external spelling: configs, JSON, CLI ("linf")
    title: ClassVar[str]  # for people: axis labels, tables ("Linf")
    # the budget the executive summary quotes (None: this threat is not quoted there)
    headline_epsilon: ClassVar[float | None] = None

    # -- geometry ------------------------------------------------------------------------------
    @abstractmethod
    def norm(self, delta: torch.Tensor) -> torch.Tensor:
        """Per-sample size of ``delta`` (N, ...) -> (N,)."""

    @abstractmethod
    def project(self, delta: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Each row of ``delta`` moved onto its eps-ball (``eps`` has shape (N,))."""

    def project_(self, delta: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """:meth:`project` written into ``delta`` (the caller owns it); returns ``delta``.
        Threats override it to spare the full-size temporaries of the out-of-place form."""
        return delta.copy_(self.project(delta, eps))

    def clip(self, x: torch.Tensor, adv: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``adv`` moved into the eps-ball around ``x`` and the [0, 1] box."""
        return self.project_(adv - x, eps).add_(x).clamp_(0.0, 1.0)

    def step(self, x: torch.Tensor, adv: torch.Tensor, size: torch.Tensor,
             direction: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """One projected step: ``clip(x, adv + size * direction, eps)`` with ``size`` (N,),
        computed in one new tensor (the inner loop of every iterative attack)."""
        new = torch.addcmul(adv, _view(size.to(adv.device, adv.dtype), adv), direction)
        return self.project_(new.sub_(x), eps).add_(x).clamp_(0.0, 1.0)

    @abstractmethod
    def direction(self, g: torch.Tensor) -> torch.Tensor:
        """Steepest-ascent direction of unit size for the gradient ``g``."""

    @abstractmethod
    def dual_norm(self, g: torch.Tensor) -> torch.Tensor:
        """Per-sample dual norm of ``g``: the first-order gain of a unit step (N,)."""

    @abstractmethod
    def linear_step(self, g: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
        """The smallest perturbation that moves a linear function with gradient ``g`` by
        ``size`` (N,) (DeepFool's step)."""

    @abstractmethod
    def random_start(self, x: torch.Tensor, eps: torch.Tensor,
                     generator: torch.Generator | None) -> torch.Tensor:
        """A uniformly random perturbation inside each eps-ball (drawn on the CPU)."""

    # -- budgets -------------------------------------------------------------------------------
    @abstractmethod
    def format_epsilon(self, value: float) -> str:
        """The one way a budget of this threat is written (``inf`` for unbounded)."""

    @abstractmethod
    def axis(self) -> tuple[float, str]:
        """(scale, label) for a plot axis of budgets: values are multiplied by ``scale``."""

    @abstractmethod
    def largest_epsilon(self, numel: int) -> float:
        """The largest meaningful budget for an image of ``numel`` values in [0, 1]."""

    def parse_epsilon(self, text: str) -> float:
        """One budget: ``0.03``, ``8/255`` or ``inf``."""
        return parse_epsilon(text)

    def parse_epsilons(self, text: str | Sequence[float]) -> list[float]:
        """Comma-separated budgets or a list of numbers, validated."""
        return parse_epsilons(text)

    def check_epsilon(self, value: float, where: str, numel: int) -> None:
        """ValueError naming ``where`` when ``value`` exceeds :meth:`largest_epsilon`."""
        top = self.largest_epsilon(numel)
        if value > top:
            raise ValueError(f"{where}: {value:g} is above the largest {self.name} budget "
                             f"{top:.4g} for pixels in [0, 1]{self._hint(value)}")

    def _hint(self, value: float) -> str:
        return ""

    # -- identity ------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __str__(self) -> str:
        return self.name


class LinfBall(Threat):
    """Every pixel value may change by at most ``eps``; budgets are written ``x/255``."""

    name = "linf"
    title = "Linf"
    headline_epsilon = 2 / 255

    def norm(self, delta: torch.Tensor) -> torch.Tensor:
        return delta.flatten(1).abs().amax(dim=1)

    def project(self, delta: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return self.project_(delta.clone(), eps)

    def project_(self, delta: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        if eps.numel() == 0:
            return delta
        lo, hi = eps.min(), eps.max()
        if bool(lo == hi):  # one budget for every row: a scalar clamp, several times faster
            return delta.clamp_(-float(hi), float(hi))
        e = _view(eps.to(delta.device, delta.dtype), delta)
        return delta.clamp_(min=-e, max=e)

    def direction(self, g: torch.Tensor) -> torch.Tensor:
        return g.sign()

    def dual_norm(self, g: torch.Tensor) -> torch.Tensor:
        return g.abs().flatten(1).sum(1)

    def linear_step(self, g: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
        return _view(size / (g.abs().flatten(1).sum(dim=1) + 1e-12), g) * g.sign()

    def random_start(self, x: torch.Tensor, eps: torch.Tensor,
                     generator: torch.Generator | None) -> torch.Tensor:
        e = _view(eps.to(x.device, x.dtype), x)
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return (2 * u - 1) * e

    def format_epsilon(self, value: float) -> str:
        if math.isinf(value):
            return "inf"
        k = value * 255
        return f"{round(k)}/255" if abs(k - round(k)) < 1e-6 else f"{k:.3g}/255"

    def axis(self) -> tuple[float, str]:
        return 255.0, "epsilon (x/255, Linf)"

    def largest_epsilon(self, numel: int) -> float:
        return 1.0

    def _hint(self, value: float) -> str:
        return f" (did you mean {value:g}/255?)"


class L2Ball(Threat):
    """The Euclidean size of the whole change is at most ``eps``; budgets are plain numbers."""

    name = "l2"
    title = "L2"

    def norm(self, delta: torch.Tensor) -> torch.Tensor:
        return delta.flatten(1).norm(dim=1)

    def project(self, delta: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        e = _view(eps.to(delta.device, delta.dtype), delta)
        n = _view(self.norm(delta), delta)
        return delta * torch.clamp(e / (n + 1e-12), max=1.0)

    def project_(self, delta: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        e = eps.to(delta.device, delta.dtype)
        return delta.mul_(_view(torch.clamp(e / (self.norm(delta) + 1e-12), max=1.0), delta))

    def direction(self, g: torch.Tensor) -> torch.Tensor:
        return g / (_view(self.norm(g), g) + 1e-12)

    def dual_norm(self, g: torch.Tensor) -> torch.Tensor:
        return g.flatten(1).norm(dim=1)

    def linear_step(self, g: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
        return _view(size / (self.norm(g).pow(2) + 1e-12), g) * g

    def random_start(self, x: torch.Tensor, eps: torch.Tensor,
                     generator: torch.Generator | None) -> torch.Tensor:
        """Uniform in the ball: a Gaussian direction times radius ``eps * u^(1/d)``."""
        e = _view(eps.to(x.device, x.dtype), x)
        d = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        d = d / _view(self.norm(d), d)
        u = torch.rand(x.shape[0], generator=generator, dtype=x.dtype).to(x.device)
        r = u.pow(1.0 / x[0].numel())
        return d * _view(r, x) * e

    def format_epsilon(self, value: float) -> str:
        return "inf" if math.isinf(value) else f"{value:.3g}"

    def axis(self) -> tuple[float, str]:
        return 1.0, "epsilon (L2)"

    def largest_epsilon(self, numel: int) -> float:
        return float(numel) ** 0.5  # every value changed across the full range


LINF = LinfBall()
L2 = L2Ball()
THREATS: dict[str, Threat] = {}


def register_threat(threat: Threat) -> Threat:
    """Make ``threat`` known by its ``name`` to :func:`threat_for` (and so to configs/CLI)."""
    if threat.name in THREATS and THREATS[threat.name] != threat:
        raise ValueError(f"threat name {threat.name!r} is already taken by "
                         f"{THREATS[threat.name]!r}")
    THREATS[threat.name] = threat
    return threat


register_threat(LINF)
register_threat(L2)


def threat_names() -> tuple[str, ...]:
    """The accepted spellings, in registration order."""
    return tuple(THREATS)


def _choices() -> str:
    names = [repr(n) for n in THREATS]
    return " or ".join(names) if len(names) <= 2 else "one of " + ", ".join(names)


def threat_for(name: Threat | str) -> Threat:
    """The threat spelled ``name`` (``"linf"``, ``"l2"``); a Threat is returned as is."""
    if isinstance(name, Threat):
        return name
    if isinstance(name, str) and name in THREATS:
        return THREATS[name]
    raise ValueError(f"norm must be {_choices()}, got {name!r}")


def format_epsilon(value: float, norm: Threat | str) -> str:
    """``threat_for(norm).format_epsilon(value)``: the one formatter, for callers holding a
    name (results files, templates)."""
    return threat_for(norm).format_epsilon(value)


def supported(threat: Threat, table: Mapping[type[Threat], T], attack: str) -> T:
    """``table[type(threat)]``, or a ValueError naming the attack, the threat and the
    supported ones (for attacks whose geometry is written per threat)."""
    if type(threat) in table:
        return table[type(threat)]
    names = ", ".join(sorted(t.name for t in table))
    raise ValueError(f"attack {attack!r} does not support norm {threat.name!r} "
                     f"(supported: {names})")
