"""Judge one defense on clean data and under naive, direct, adaptive and black-box attacks.

What each column means (all success rates are measured on the *deployed* defended model,
``DefendedModel(model, defense)``, with one seeded draw of its randomness, the same draw for
every column):

* ``undefended`` -- the attack against the bare model, judged on the bare model (baseline).
* ``naive`` -- an *oblivious* attacker: adversarials crafted against the bare model, then fed
  through the defense.
* ``direct`` -- the attack run on the defended model with whatever gradient autograd gives
  (zero for JPEG / bit depth / TVM): what a careless evaluation reports.
* ``adaptive`` -- the attack run on ``adaptive(defended, eot_samples=n)``: BPDA gradients and,
  for randomised defenses, EOT over ``n`` draws.
* ``blackbox`` -- optional score-based attack (e.g. ``SquareAttack``) on the defended model.
* ``worst_case`` -- per sample, success under any of the attacks run.

Verification (:func:`evaluate_defense`): for ``dodging`` the genuine pairs the defended model
accepts (probe ``x1``, enrolled ``x2``); for ``impersonation`` the impostor pairs it rejects.
Identification (:func:`evaluate_defense_identification`): probes the defended classifier
names correctly; ``untargeted`` must be misnamed, ``targeted`` named as ``targets``.

Every column runs the attack separately at each epsilon at full strength (``early_stop``
off), so a larger budget never reuses a smaller one's barely-successful adversarial.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from facerobust.attacks.registry import full_budget
from facerobust.attacks.threat import LINF, Threat
from facerobust.core.stats import Rate
from facerobust.defenses.base import Defense
from facerobust.defenses.masking import MaskingFlags, masking_flags
from facerobust.defenses.model import DefendedModel, adaptive
from facerobust.eval.metrics import tar_at_far
from facerobust.eval.results import DefenseUnit
from facerobust.eval.tasks import embed, make_criterion
from facerobust.models.base import accepts

SEED = 0


def accuracy_at_threshold(distances: torch.Tensor, same: torch.Tensor, threshold: float) -> Rate:
    """Pairs decided correctly by the accept rule at ``threshold``."""
    return Rate.of(accepts(distances, threshold) == same)


def _tar(distances: torch.Tensor, same: torch.Tensor, far: float) -> Rate:

    _, _, accepted = tar_at_far(distances.numpy(), same.numpy(), far)
    return Rate(accepted, int(same.sum()))


def _seeded(defense: Defense, seed: int) -> Defense:
    return defense.set_generator(torch.Generator().manual_seed(seed))


def _cost_ms(defense: Defense, x: torch.Tensor, repeats: int = 3) -> float:
    times = []
    with torch.no_grad():
        defense(x[:1])
        for _ in range(repeats):
            t0 = time.perf_counter()
            defense(x)
            times.append(time.perf_counter() - t0)
    return 1000 * sorted(times)[len(times) // 2] / len(x)


def flag_sentences(flags: MaskingFlags | None) -> list[str]:
    """The gradient-masking checks that fired, each as a sentence."""
    if flags is None:
        return []
    out = []
    if flags.zero_gradients:
        out.append(f"Gradients through the defense are zero for "
                   f"{100 * flags.zero_grad_fraction:.0f}% of input entries (gradient "
                   "masking): naive and direct white-box figures overstate robustness.")
    if flags.random_outputs:
        out.append("The defended model's output changes between calls (randomised "
                   "defense): only EOT attacks are meaningful.")
    if flags.blackbox_beats_whitebox:
        out.append("A black-box attack beats the white-box one: the white-box gradient is "
                   "masked.")
    if flags.success_not_rising:
        out.append("Attack success does not rise with the budget: a sign of gradient "
                   "masking or of a too-weak attack.")
    return out


@dataclass(frozen=True)
class _Columns:
    tables: dict[str, list[Rate] | None]
    worst: list[Rate]
    flags: MaskingFlags | None


def _sweep(attack: Any, target: nn.Module, x: torch.Tensor, crit: Any, eps: list[float],
           seed: int, defense: Defense) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Run ``attack`` separately at each epsilon (seeded alike); adversarials and the
    attacked model's own success (n_eps, N)."""
    advs, wins = [], []
    for e in eps:
        _seeded(defense, seed)
        result = attack(target, x, crit, epsilons=[e],
                        generator=torch.Generator().manual_seed(seed))
        advs.append(result.clipped[0])
        wins.append(result.success[0])
    return advs, torch.stack(wins)


def _attack_columns(bare: nn.Module, defended: DefendedModel, xs: torch.Tensor,
                    crit_bare: Any, crit_def: Any, *, attack: Any, eps: list[float],
                    eot_samples: int, direct: bool, blackbox: Any | None, seed: int,
                    batch_size: int, progress: bool) -> _Columns:
    defense = defended.defense

    def judge(advs: list[torch.Tensor]) -> torch.Tensor:
        _seeded(defense, seed)
        return torch.stack([crit_def.is_adversarial(embed(defended, a, batch_size)).cpu()
                            for a in advs])

    runs: list[tuple[str, nn.Module, Any, Any]] = [
        ("naive", bare, attack, crit_bare),
        ("adaptive", adaptive(defended, eot_samples=eot_samples), attack, crit_def)]
    if direct:
        runs.append(("direct", defended, attack, crit_def))
    if blackbox is not None:
        runs.append(("blackbox", defended, blackbox, crit_def))
    tables: dict[str, list[Rate] | None] = {"direct": None, "blackbox": None}
    fooled: dict[str, torch.Tensor] = {}
    bar = tqdm(runs, desc=f"{defense.spec} attacks", disable=not progress, leave=False)
    for label, target, atk, crit in bar:
        bar.set_postfix_str(label)
        advs, wins = _sweep(full_budget(atk), target, xs, crit, eps, seed, defense)
        if label == "naive":
            tables["undefended"] = [Rate.of(w) for w in wins]
        fooled[label] = judge(advs)
        tables[label] = [Rate.of(f) for f in fooled[label]]

    def rates(label: str) -> dict[float, float] | None:
        column = tables[label]
        return None if column is None else {e: r.rate for e, r in zip(eps, column, strict=True)}

    _seeded(defense, seed)
    flags = masking_flags(defended, xs, loss_fn=crit_def.loss,
                          whitebox=rates("direct") or rates("naive"), blackbox=rates("blackbox"))
    worst = [Rate.of(w) for w in torch.stack(list(fooled.values())).any(0)]
    return _Columns(tables, worst, flags)


def _check_common(defense: Defense, epsilons: Sequence[float], n_attack: int | None
                  ) -> list[float]:
    if not isinstance(defense, Defense):
        raise TypeError(f"defense must be a Defense, got {type(defense).__name__}")
    if n_attack is not None and n_attack < 1:
        raise ValueError(f"n_attack must be >= 1, got {n_attack}")
    eps = [float(e) for e in epsilons]
    if not eps:
        raise ValueError("epsilons is empty")
    return eps


def _unit(*, model: nn.Module, defense: Defense, goal: str, attack: Any, eps: list[float],
          eot_samples: int, clean_measure: str, clean: Rate, clean_undefended: Rate,
          tars: tuple[Rate | None, Rate | None], far: float, idx: torch.Tensor,
          columns: _Columns | None, cost_x: torch.Tensor, start: float) -> DefenseUnit:
    threat: Threat = getattr(attack, "threat", LINF)
    norm = threat.name
    notes = [] if columns is not None else [
        f"no sample qualifies for {goal} under the defense; nothing attacked"]
    zero = [Rate(0, 0) for _ in eps]
    tables = columns.tables if columns is not None else {}
    return DefenseUnit(
        name=defense.spec, slug="".join(c if c.isalnum() else "-" for c in defense.spec),
        params=defense.params(), model=str(getattr(model, "name", type(model).__name__)),
        goal=goal, attack=type(attack).__name__, norm=norm, epsilons=eps,
        epsilon_labels=[threat.format_epsilon(e) for e in eps],
        adaptive_mode=adaptive(DefendedModel(model, defense), eot_samples=eot_samples).mode,
        clean_measure=clean_measure, clean=clean, clean_undefended=clean_undefended, far=far,
        tar_at_far=tars[0], tar_at_far_undefended=tars[1], n_attacked=len(idx),
        undefended=tables.get("undefended") or zero, naive=tables.get("naive") or zero,
        adaptive=tables.get("adaptive") or zero, direct=tables.get("direct"),
        blackbox=tables.get("blackbox"), worst_case=columns.worst if columns else zero,
        ms_per_image=_cost_ms(defense, cost_x[: min(len(cost_x), 16)]),
        masking=columns.flags.to_dict() if columns and columns.flags else {},
        flags=flag_sentences(columns.flags if columns else None), notes=notes,
        seconds=time.perf_counter() - start)


def evaluate_defense(
    model: nn.Module, defense: Defense, x1: torch.Tensor, x2: torch.Tensor, same: torch.Tensor,
    *, attack: Any, epsilons: Sequence[float], goal: str = "dodging",
    eot_samples: int | None = None, n_attack: int | None = None, direct: bool = True,
    blackbox: Any | None = None, far: float = 1e-3, batch_size: int = 32, seed: int = SEED,
    progress: bool = False,
) -> DefenseUnit:
    """Evaluate ``defense`` in front of the FaceModel ``model`` on verification pairs.

    ``x1``/``x2`` are (N, 3, H, W) chips in [0, 1], ``same`` a bool (N,) tensor (True =
    genuine pair). ``attack`` is a facerobust attack (e.g. ``build_attack("pgd", LINF,
    steps=10)``), ``blackbox`` an optional one (e.g. ``build_attack("square", LINF)``).
    ``eot_samples`` defaults to 8 for randomised defenses; deterministic defenses always use
    1. ``n_attack`` caps the attacked samples. Clean figures use all pairs at ``model.threshold``.
    """
    if goal not in ("dodging", "impersonation"):
        raise ValueError(f"goal must be 'dodging' or 'impersonation', got {goal!r}")
    if x1.shape != x2.shape or x1.ndim != 4:
        raise ValueError(f"x1 and x2 must be equal (N, C, H, W) batches, got "
                         f"{tuple(x1.shape)} and {tuple(x2.shape)}")
    if same.dtype != torch.bool or same.shape != (len(x1),):
        raise ValueError(f"same must be a bool tensor of shape ({len(x1)},), got "
                         f"{same.dtype} {tuple(same.shape)}")
    eps = _check_common(defense, epsilons, n_attack)
    start = time.perf_counter()
    defended = DefendedModel(model, defense)
    eot = (eot_samples or 8) if defense.randomized else 1
    threshold = float(defended.threshold)
    bare1, bare2 = embed(model, x1, batch_size), embed(model, x2, batch_size)
    _seeded(defense, seed)
    def1, def2 = embed(defended, x1, batch_size), embed(defended, x2, batch_size)
    d_bare, d_def = model.distance(bare1, bare2), defended.distance(def1, def2)  # type: ignore[operator]
    accepted = accepts(d_def, threshold)
    wanted = same & accepted if goal == "dodging" else ~same & ~accepted
    idx = wanted.nonzero()[:, 0][:n_attack]
    columns = None
    if len(idx):
        columns = _attack_columns(
            model, defended, x1[idx], make_criterion(goal, model, bare2[idx]),
            make_criterion(goal, defended, def2[idx]), attack=attack, eps=eps,
            eot_samples=eot, direct=direct, blackbox=blackbox, seed=seed,
            batch_size=batch_size, progress=progress)
    return _unit(model=model, defense=defense, goal=goal, attack=attack, eps=eps,
                 eot_samples=eot, clean_measure="verification decisions at the operating "
                 "threshold", clean=accuracy_at_threshold(d_def, same, threshold),
                 clean_undefended=accuracy_at_threshold(d_bare, same, threshold),
                 tars=(_tar(d_def, same, far), _tar(d_bare, same, far)), far=far, idx=idx,
                 columns=columns, cost_x=x1, start=start)


def evaluate_defense_identification(
    classifier: nn.Module, defense: Defense, x: torch.Tensor, labels: torch.Tensor, *,
    attack: Any, epsilons: Sequence[float], goal: str = "untargeted",
    targets: torch.Tensor | None = None, eot_samples: int | None = None,
    n_attack: int | None = None, direct: bool = True, blackbox: Any | None = None,
    batch_size: int = 32, seed: int = SEED, progress: bool = False,
) -> DefenseUnit:
    """Evaluate ``defense`` in front of a closed-set ``classifier`` (chips -> logits) on
    probes ``x`` with true ``labels``; ``targets`` (one per probe) for ``goal="targeted"``."""
    if goal not in ("untargeted", "targeted"):
        raise ValueError(f"goal must be 'untargeted' or 'targeted', got {goal!r}")
    if x.ndim != 4 or labels.shape != (len(x),):
        raise ValueError(f"need (N, C, H, W) probes and N labels, got {tuple(x.shape)} and "
                         f"{tuple(labels.shape)}")
    if goal == "targeted" and (targets is None or targets.shape != labels.shape):
        raise ValueError("goal 'targeted' needs one target label per probe")
    eps = _check_common(defense, epsilons, n_attack)
    start = time.perf_counter()
    defended = DefendedModel(classifier, defense)
    eot = (eot_samples or 8) if defense.randomized else 1
    bare_pred = embed(classifier, x, batch_size).argmax(1)
    _seeded(defense, seed)
    def_pred = embed(defended, x, batch_size).argmax(1)
    idx = (def_pred == labels).nonzero()[:, 0][:n_attack]
    columns = None
    if len(idx):
        ref = (targets if goal == "targeted" else labels)[idx]  # type: ignore[index]
        columns = _attack_columns(
            classifier, defended, x[idx], make_criterion(goal, classifier, ref),
            make_criterion(goal, defended, ref), attack=attack, eps=eps, eot_samples=eot,
            direct=direct, blackbox=blackbox, seed=seed, batch_size=batch_size,
            progress=progress)
    return _unit(model=classifier, defense=defense, goal=goal, attack=attack, eps=eps,
                 eot_samples=eot, clean_measure="identification top-1",
                 clean=Rate.of(def_pred == labels), clean_undefended=Rate.of(bare_pred == labels),
                 tars=(None, None), far=0.0, idx=idx, columns=columns, cost_x=x, start=start)
