"""Attack registry: every attack a user can name, with its threats, kind and default options.

:func:`build_attack` is the one constructor the tool uses: the CLIs, the audit config and
runner, training, hardening, distillation and compare all build attacks through it from
``(name, threat, options)``; an unsupported (attack, threat) pair is a ``ValueError`` naming
both. ``steps`` / ``queries`` are the two knobs configs expose (``None`` = the registry's
default); any other setting goes in the family's options dataclass.

>>> from facerobust.attacks.registry import build_attack, ATTACKS
>>> from facerobust.attacks.cw import CWOptions
>>> build_attack("pgd", "l2", steps=20)
PGD(norm='l2', steps=20, ...)                                          # doctest: +SKIP
>>> build_attack("cw", "l2", CWOptions(steps=50, binary_search_steps=3, initial_const=1.0))
CarliniWagnerL2(norm='l2', binary_search_steps=3, steps=50, ...)       # doctest: +SKIP
>>> ATTACKS["cw"].norms
('l2',)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch

from facerobust.attacks.base import Attack, AttackOptions
from facerobust.attacks.boosting import BoostedFGSM, BoostOptions
from facerobust.attacks.cw import CarliniWagnerL2, CWOptions
from facerobust.attacks.deepfool import DeepFool, DeepFoolOptions
from facerobust.attacks.fgsm import FGM, FGSM, FGMOptions
from facerobust.attacks.hopskipjump import HopSkipJump, HSJOptions
from facerobust.attacks.mifgsm import MIFGSM, MIFGSMOptions
from facerobust.attacks.pgd import BIM, PGD, BIMOptions, PGDOptions
from facerobust.attacks.square import SquareAttack, SquareOptions
from facerobust.attacks.threat import L2, LINF, Threat, threat_for

Kind = Literal["white-box", "score-based", "decision-based"]


@dataclass(frozen=True)
class AttackEntry:
    """A named attack: its class per threat name, its default options and which option
    field each config knob (``steps`` / ``queries``) sets."""

    name: str
    title: str
    kind: Kind
    classes: Mapping[str, type[Attack]]  # threat name -> class
    options: AttackOptions
    knobs: Mapping[str, str] = field(default_factory=dict)  # knob -> option field
    minimizes: bool = False  # finds the smallest perturbation (eps may be inf)

    @property
    def norms(self) -> tuple[str, ...]:
        """Names of the supported threats."""
        return tuple(self.classes)

    @property
    def defaults(self) -> dict[str, int]:
        """The default value of each knob this attack uses."""
        return {knob: getattr(self.options, f) for knob, f in self.knobs.items()}

    @property
    def uses_steps(self) -> bool:
        return "steps" in self.knobs

    @property
    def uses_queries(self) -> bool:
        return "queries" in self.knobs


def _both(cls: type[Attack]) -> dict[str, type[Attack]]:
    """The same class for the Linf and the L2 ball."""
    return dict.fromkeys((LINF.name, L2.name), cls)


STEPS: Mapping[str, str] = {"steps": "steps"}
QUERIES: Mapping[str, str] = {"queries": "max_queries"}
ATTACKS: dict[str, AttackEntry] = {e.name: e for e in (
    AttackEntry("fgsm", "FGSM (Linf) / FGM (L2), one gradient step", "white-box",
                {"linf": FGSM, "l2": FGM}, FGMOptions()),
    AttackEntry("bim", "BIM / I-FGSM", "white-box", _both(BIM), BIMOptions(), STEPS),
    AttackEntry("pgd", "PGD with random start", "white-box", _both(PGD), PGDOptions(), STEPS),
    AttackEntry("mifgsm", "MI-FGSM (momentum)", "white-box", _both(MIFGSM), MIFGSMOptions(),
                STEPS),
    AttackEntry("difgsm", "DI-FGSM (input diversity; transfer)", "white-box",
                _both(BoostedFGSM), BoostOptions(decay=0.0, diversity=0.5), STEPS),
    AttackEntry("tifgsm", "TI-FGSM (translation-invariant gradient; transfer)", "white-box",
                _both(BoostedFGSM), BoostOptions(decay=0.0, ti_kernel=7), STEPS),
    AttackEntry("nifgsm", "NI-FGSM (Nesterov momentum; transfer)", "white-box",
                _both(BoostedFGSM), BoostOptions(decay=1.0, nesterov=True), STEPS),
    AttackEntry("mditifgsm", "MI-DI-TI-FGSM (momentum + diversity + TI; transfer)",
                "white-box", _both(BoostedFGSM),
                BoostOptions(decay=1.0, diversity=0.5, ti_kernel=7), STEPS),
    AttackEntry("cw", "Carlini-Wagner L2", "white-box", {"l2": CarliniWagnerL2},
                CWOptions(binary_search_steps=5, initial_const=1.0), STEPS, minimizes=True),
    AttackEntry("deepfool", "DeepFool", "white-box", _both(DeepFool), DeepFoolOptions(),
                STEPS, minimizes=True),
    AttackEntry("square", "Square Attack (score-based)", "score-based", _both(SquareAttack),
                SquareOptions(), QUERIES),
    AttackEntry("hsj", "HopSkipJump (decision-based)", "decision-based", _both(HopSkipJump),
                HSJOptions(), QUERIES, minimizes=True),
)}


def attack_entry(name: str, norm: Threat | str | None = None, *, where: str = "") -> AttackEntry:
    """The registry entry of ``name``; with ``norm`` (a threat or its name), check the pair is
    supported."""
    prefix = f"{where}: " if where else ""
    if name not in ATTACKS:
        raise ValueError(f"{prefix}unknown attack {name!r}; choose from {', '.join(ATTACKS)}")
    entry = ATTACKS[name]
    if norm is not None:
        spelled = norm.name if isinstance(norm, Threat) else norm
        if spelled not in entry.classes:
            raise ValueError(f"{prefix}attack {name!r} does not support norm {spelled!r} "
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
        if key in entry.knobs:
            value = entry.defaults[key] if given is None else given
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} of attack {name!r} must be an integer >= 1, "
                                 f"got {value!r}")
            out[key] = value
    return out


def attack_options(name: str, steps: int | None = None, queries: int | None = None
                   ) -> AttackOptions:
    """The registry's options for ``name`` with the config knobs applied."""
    entry = attack_entry(name)
    resolved = resolve_steps_queries(name, steps, queries)
    return entry.options.replace(**{entry.knobs[k]: v for k, v in resolved.items()})


def build_attack(name: str, threat: Threat | str, options: AttackOptions | None = None, *,
                 steps: int | None = None, queries: int | None = None,
                 starting_points: torch.Tensor | None = None, where: str = "") -> Attack:
    """A configured attack. ``threat`` is a Threat or its name (``"linf"``); ``options`` (the
    family's dataclass) replaces the registry's defaults; ``steps``/``queries`` (``None`` = the
    default) set those knobs; ``starting_points`` is for decision-based attacks (HSJ)."""
    entry = attack_entry(name, threat, where=where)
    t = threat_for(threat)
    if options is None:
        options = attack_options(name, steps, queries)
    else:
        if not isinstance(options, type(entry.options)):
            raise TypeError(f"attack {name!r} takes {type(entry.options).__name__}, got "
                            f"{type(options).__name__}")
        given = {k: v for k, v in (("steps", steps), ("queries", queries)) if v is not None}
        resolved = resolve_steps_queries(name, given.get("steps"), given.get("queries"))
        options = options.replace(**{entry.knobs[k]: v for k, v in resolved.items()
                                     if k in given})
    cls = entry.classes[t.name]
    if starting_points is not None and issubclass(cls, HopSkipJump):
        return cls(t, options, starting_points=starting_points)
    return cls(t, options)


def full_budget(attack: Attack) -> Attack:
    """A copy of ``attack`` that runs every step (``early_stop`` off) and returns each sample's
    last successful iterate (the final one where none before it succeeded) instead of its
    first success: adversarials crafted *for* the budget, as transfer, defenses and every "at
    budget eps" figure need."""
    if getattr(attack.options, "early_stop", False):
        return attack.with_options(early_stop=False)
    return attack
