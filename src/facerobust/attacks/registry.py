"""Attack registry: every attack a user can name, with its norms, kind and defaults.

The CLIs, the audit config and the audit runner all build attacks through
:func:`build_attack`; an unsupported (attack, norm) pair is a ``ValueError`` naming both.

>>> from facerobust.attacks.registry import build_attack, ATTACKS
>>> build_attack("pgd", norm="l2", steps=20)
PGD(norm='l2', steps=20, ...)                                          # doctest: +SKIP
>>> ATTACKS["cw"].norms
('l2',)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

import torch

from facerobust.attacks.base import Attack, Norm
from facerobust.attacks.boosting import BoostedFGSM
from facerobust.attacks.cw import CarliniWagnerL2
from facerobust.attacks.deepfool import DeepFool
from facerobust.attacks.fgsm import FGM, FGSM
from facerobust.attacks.hopskipjump import HopSkipJump
from facerobust.attacks.mifgsm import MIFGSM
from facerobust.attacks.pgd import BIM, PGD
from facerobust.attacks.square import SquareAttack

Kind = Literal["white-box", "score-based", "decision-based"]


@dataclass(frozen=True)
class AttackEntry:
    """A named attack: ``build(norm, steps, queries, starting_points)`` makes one."""

    name: str
    title: str
    kind: Kind
    norms: tuple[str, ...]
    build: Callable[[Norm, int, int, torch.Tensor | None], Attack]
    defaults: Mapping[str, int] = field(default_factory=dict)  # steps / queries when used
    minimizes: bool = False  # finds the smallest perturbation (eps may be inf)

    @property
    def uses_steps(self) -> bool:
        return "steps" in self.defaults

    @property
    def uses_queries(self) -> bool:
        return "queries" in self.defaults


def _fgsm(norm: Norm, steps: int, queries: int, starts: torch.Tensor | None) -> Attack:

    return FGSM() if norm == "linf" else FGM()


def _bim(norm: Norm, steps: int, queries: int, starts: torch.Tensor | None) -> Attack:

    return BIM(norm=norm, steps=steps)


def _pgd(norm: Norm, steps: int, queries: int, starts: torch.Tensor | None) -> Attack:

    return PGD(norm=norm, steps=steps)


def _mifgsm(norm: Norm, steps: int, queries: int, starts: torch.Tensor | None) -> Attack:

    return MIFGSM(norm=norm, steps=steps)


def _boosted(**tricks: float | int | bool
             ) -> Callable[[Norm, int, int, torch.Tensor | None], Attack]:
    def build(norm: Norm, steps: int, queries: int, starts: torch.Tensor | None) -> Attack:

        return BoostedFGSM(norm=norm, steps=steps, **tricks)  # type: ignore[arg-type]

    return build


def _cw(norm: Norm, steps: int, queries: int, starts: torch.Tensor | None) -> Attack:

    return CarliniWagnerL2(steps=steps, binary_search_steps=5, initial_const=1.0)


def _deepfool(norm: Norm, steps: int, queries: int, starts: torch.Tensor | None) -> Attack:

    return DeepFool(norm=norm, steps=steps)


def _square(norm: Norm, steps: int, queries: int, starts: torch.Tensor | None) -> Attack:

    return SquareAttack(norm=norm, max_queries=queries)


def _hsj(norm: Norm, steps: int, queries: int, starts: torch.Tensor | None) -> Attack:

    return HopSkipJump(norm=norm, max_queries=queries, starting_points=starts)


BOTH = ("linf", "l2")
ATTACKS: dict[str, AttackEntry] = {e.name: e for e in (
    AttackEntry("fgsm", "FGSM (Linf) / FGM (L2), one gradient step", "white-box", BOTH, _fgsm),
    AttackEntry("bim", "BIM / I-FGSM", "white-box", BOTH, _bim, {"steps": 10}),
    AttackEntry("pgd", "PGD with random start", "white-box", BOTH, _pgd, {"steps": 10}),
    AttackEntry("mifgsm", "MI-FGSM (momentum)", "white-box", BOTH, _mifgsm, {"steps": 10}),
    AttackEntry("difgsm", "DI-FGSM (input diversity; transfer)", "white-box", BOTH,
                _boosted(decay=0.0, diversity=0.5), {"steps": 10}),
    AttackEntry("tifgsm", "TI-FGSM (translation-invariant gradient; transfer)", "white-box",
                BOTH, _boosted(decay=0.0, ti_kernel=7), {"steps": 10}),
    AttackEntry("nifgsm", "NI-FGSM (Nesterov momentum; transfer)", "white-box", BOTH,
                _boosted(decay=1.0, nesterov=True), {"steps": 10}),
    AttackEntry("mditifgsm", "MI-DI-TI-FGSM (momentum + diversity + TI; transfer)",
                "white-box", BOTH, _boosted(decay=1.0, diversity=0.5, ti_kernel=7),
                {"steps": 10}),
    AttackEntry("cw", "Carlini-Wagner L2", "white-box", ("l2",), _cw, {"steps": 100},
                minimizes=True),
    AttackEntry("deepfool", "DeepFool", "white-box", BOTH, _deepfool, {"steps": 50},
                minimizes=True),
    AttackEntry("square", "Square Attack (score-based)", "score-based", BOTH, _square,
                {"queries": 1000}),
    AttackEntry("hsj", "HopSkipJump (decision-based)", "decision-based", BOTH, _hsj,
                {"queries": 1000}, minimizes=True),
)}


def attack_entry(name: str, norm: str | None = None, *, where: str = "") -> AttackEntry:
    """The registry entry of ``name``; with ``norm``, check the pair is supported."""
    prefix = f"{where}: " if where else ""
    if name not in ATTACKS:
        raise ValueError(f"{prefix}unknown attack {name!r}; choose from {', '.join(ATTACKS)}")
    entry = ATTACKS[name]
    if norm is not None and norm not in entry.norms:
        raise ValueError(f"{prefix}attack {name!r} does not support norm {norm!r} "
                         f"(supported: {', '.join(entry.norms)})")
    return entry


def attack_names(kind: Kind | None = None) -> tuple[str, ...]:
    return tuple(n for n, e in ATTACKS.items() if kind is None or e.kind == kind)


def resolve_steps_queries(name: str, steps: int | None, queries: int | None
                          ) -> dict[str, int]:
    """The effective ``steps`` / ``queries`` of ``name`` (``None`` = the registry default);
    only the settings the attack uses are returned."""
    entry = attack_entry(name)
    out = {}
    for key, given in (("steps", steps), ("queries", queries)):
        if key in entry.defaults:
            value = entry.defaults[key] if given is None else given
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} of attack {name!r} must be an integer >= 1, "
                                 f"got {value!r}")
            out[key] = value
    return out


def build_attack(name: str, *, norm: str, steps: int | None = None,
                 queries: int | None = None, starting_points: torch.Tensor | None = None,
                 where: str = "") -> Attack:
    """A configured attack; ``steps``/``queries`` ``None`` take the registry defaults."""
    entry = attack_entry(name, norm, where=where)
    resolved = resolve_steps_queries(name, steps, queries)
    return entry.build(cast(Norm, norm), resolved.get("steps", 0), resolved.get("queries", 0),
                       starting_points)


def full_budget(attack: Attack) -> Attack:
    """A copy of ``attack`` that runs every step and returns the final iterate (``early_stop``
    off) instead of each sample's first success: adversarials crafted *for* the budget, as
    transfer, defenses and every "at budget eps" figure need."""
    if getattr(attack, "early_stop", False):
        attack = copy.copy(attack)
        attack.early_stop = False  # type: ignore[attr-defined]
    return attack
