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

A defense is judged in three steps, so the audit can shard it by sample like an attack unit:
:func:`plan_verification` / :func:`plan_identification` (clean figures, attacked samples and
their references: a :class:`DefensePlan`), :func:`attack_part` on any slice of the attacked
samples (per-sample outcomes, seeded), and :func:`merge_defense` (the typed result).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from facerobust.attacks.base import check_int
from facerobust.attacks.registry import full_budget
from facerobust.attacks.threat import LINF, Threat
from facerobust.core.embedding import model_device
from facerobust.core.precision import check_precision, crafting
from facerobust.core.stats import Rate
from facerobust.data.chip_rows import take_rows
from facerobust.defenses.base import Defense
from facerobust.defenses.masking import (
    RANDOM_TOL,
    ZERO_GRAD_LIMIT,
    MaskingFlags,
    blackbox_beats_whitebox,
    output_variation,
    success_not_rising,
    zero_gradient_fraction,
)
from facerobust.defenses.model import DefendedModel, adaptive
from facerobust.eval.metrics import tar_at_far
from facerobust.eval.results import DefenseUnit
from facerobust.eval.tasks import (
    GOALS,
    IDENTIFICATION_GOALS,
    VERIFICATION_GOALS,
    embed,
    make_criterion,
)
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
class DefenseEvalOptions:
    """How a defense is judged: the budgets ``epsilons`` (each column runs each at full
    strength), the ``goal``, EOT samples of the adaptive attack (default 8 for randomised
    defenses; deterministic ones always use 1), at most ``n_attack`` attacked samples, the
    ``direct`` column on or off, an optional ``blackbox`` attack (e.g.
    ``build_attack("square", LINF)``), the FAR of the clean TAR (verification), the batch
    size, the seed of every draw, progress bars and the ``precision`` the attacks craft in
    (:mod:`facerobust.core.precision`; every verdict is a float32 forward)."""

    epsilons: tuple[float, ...]
    goal: str
    eot_samples: int | None = None
    n_attack: int | None = None
    direct: bool = True
    blackbox: Any | None = None
    far: float = 1e-3
    batch_size: int = 32
    seed: int = SEED
    progress: bool = False
    precision: str = "fp32"

    def __post_init__(self) -> None:
        check_precision(self.precision, "precision")
        eps = tuple(float(e) for e in self.epsilons)
        if not eps:
            raise ValueError("epsilons is empty")
        if any(not e >= 0 for e in eps):
            raise ValueError(f"epsilons must be >= 0, got {list(eps)}")
        object.__setattr__(self, "epsilons", eps)
        if self.goal not in GOALS:
            raise ValueError(f"goal must be one of {', '.join(GOALS)}, got {self.goal!r}")
        for name in ("eot_samples", "n_attack"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name))
        check_int("batch_size", self.batch_size)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if not 0 < self.far < 1:
            raise ValueError(f"far must be in (0, 1), got {self.far!r}")


def _sweep(attack: Any, target: nn.Module, x: torch.Tensor, crit: Any, eps: list[float],
           seed: int, defense: Defense) -> list[torch.Tensor]:
    """Run ``attack`` separately at each epsilon (seeded alike): the adversarials."""
    advs = []
    for e in eps:
        _seeded(defense, seed)
        result = attack(target, x, crit, epsilons=[e],
                        generator=torch.Generator().manual_seed(seed))
        advs.append(result.clipped[0])
    return advs


def _eot(defense: Defense, options: DefenseEvalOptions) -> int:
    """EOT samples of the adaptive attack: 1 for deterministic defenses."""
    return (options.eot_samples or 8) if defense.randomized else 1


def _check_defense(defense: Defense) -> None:
    if not isinstance(defense, Defense):
        raise TypeError(f"defense must be a Defense, got {type(defense).__name__}")


@dataclass(frozen=True)
class CleanFigures:
    """The clean figures of a defense unit, defended and undefended."""

    measure: str
    defended: Rate
    undefended: Rate
    tars: tuple[Rate | None, Rate | None] = (None, None)
    far: float = 0.0


@dataclass(frozen=True)
class DefensePlan:
    """What every shard of a defense unit shares: the clean figures, the attacked samples
    (``idx``, rows of the candidate samples), their references on the bare and the defended
    model (enrolled descriptors, or true / target labels) and the defense's cost."""

    clean: CleanFigures
    idx: torch.Tensor
    ref_bare: torch.Tensor
    ref_defended: torch.Tensor
    ms_per_image: float


@dataclass(frozen=True)
class PairEmbeddings:
    """Descriptors of the pairs' first and second chips on the bare and the defended model."""

    bare: tuple[torch.Tensor, torch.Tensor]
    defended: tuple[torch.Tensor, torch.Tensor]


def pair_embeddings(model: nn.Module, defense: Defense, chips: Any, rows: tuple[
        torch.Tensor, torch.Tensor], options: DefenseEvalOptions, *,
                    bare_all: torch.Tensor | None = None) -> PairEmbeddings:
    """The pairs' descriptors (``rows``: their chip rows in ``chips``). ``bare_all``, the bare
    model's descriptors of every chip, is reused when given; a deterministic defense embeds
    each distinct chip once, a randomised one every pair's chips in order, as it always drew."""
    a, b = rows
    if bare_all is None:
        bare = (embed(model, take_rows(chips, a), options.batch_size),
                embed(model, take_rows(chips, b), options.batch_size))
    else:
        bare = (bare_all[a], bare_all[b])
    defended = DefendedModel(model, defense)
    _seeded(defense, options.seed)
    if defense.randomized:
        return PairEmbeddings(bare, (embed(defended, take_rows(chips, a), options.batch_size),
                                     embed(defended, take_rows(chips, b), options.batch_size)))
    distinct, where = torch.unique(torch.cat([a, b]), return_inverse=True)
    emb = embed(defended, take_rows(chips, distinct), options.batch_size)[where]
    return PairEmbeddings(bare, (emb[:len(a)], emb[len(a):]))


def plan_verification(model: nn.Module, defense: Defense, x1: torch.Tensor, x2: torch.Tensor,
                      same: torch.Tensor, options: DefenseEvalOptions, *,
                      embeddings: PairEmbeddings | None = None) -> DefensePlan:
    """Clean figures on every pair and the pairs to attack (see :func:`evaluate_defense`);
    ``embeddings``: the pairs' descriptors when already computed (:func:`pair_embeddings`)."""
    o = options
    if o.goal not in VERIFICATION_GOALS:
        raise ValueError(f"goal must be 'dodging' or 'impersonation', got {o.goal!r}")
    if x1.shape != x2.shape or x1.ndim != 4:
        raise ValueError(f"x1 and x2 must be equal (N, C, H, W) batches, got "
                         f"{tuple(x1.shape)} and {tuple(x2.shape)}")
    if same.dtype != torch.bool or same.shape != (len(x1),):
        raise ValueError(f"same must be a bool tensor of shape ({len(x1)},), got "
                         f"{same.dtype} {tuple(same.shape)}")
    _check_defense(defense)
    defended = DefendedModel(model, defense)
    threshold = float(defended.threshold)
    if embeddings is None:
        bare1, bare2 = embed(model, x1, o.batch_size), embed(model, x2, o.batch_size)
        _seeded(defense, o.seed)
        def1, def2 = embed(defended, x1, o.batch_size), embed(defended, x2, o.batch_size)
    else:
        (bare1, bare2), (def1, def2) = embeddings.bare, embeddings.defended
    d_bare, d_def = model.distance(bare1, bare2), defended.distance(def1, def2)  # type: ignore[operator]
    accepted = accepts(d_def, threshold)
    wanted = same & accepted if o.goal == "dodging" else ~same & ~accepted
    idx = wanted.nonzero()[:, 0][:o.n_attack]
    clean = CleanFigures("verification decisions at the operating threshold",
                         accuracy_at_threshold(d_def, same, threshold),
                         accuracy_at_threshold(d_bare, same, threshold),
                         (_tar(d_def, same, o.far), _tar(d_bare, same, o.far)), o.far)
    return DefensePlan(clean, idx, bare2[idx], def2[idx],
                       _cost_ms(defense, x1[: min(len(x1), 16)]))


def plan_identification(classifier: nn.Module, defense: Defense, x: torch.Tensor,
                        labels: torch.Tensor, options: DefenseEvalOptions,
                        targets: torch.Tensor | None = None) -> DefensePlan:
    """Clean top-1 and the probes to attack (see :func:`evaluate_defense_identification`)."""
    o = options
    if o.goal not in IDENTIFICATION_GOALS:
        raise ValueError(f"goal must be 'untargeted' or 'targeted', got {o.goal!r}")
    if x.ndim != 4 or labels.shape != (len(x),):
        raise ValueError(f"need (N, C, H, W) probes and N labels, got {tuple(x.shape)} and "
                         f"{tuple(labels.shape)}")
    if o.goal == "targeted" and (targets is None or targets.shape != labels.shape):
        raise ValueError("goal 'targeted' needs one target label per probe")
    _check_defense(defense)
    defended = DefendedModel(classifier, defense)
    bare_pred = embed(classifier, x, o.batch_size).argmax(1)
    _seeded(defense, o.seed)
    def_pred = embed(defended, x, o.batch_size).argmax(1)
    idx = (def_pred == labels).nonzero()[:, 0][:o.n_attack]
    ref = (targets if o.goal == "targeted" else labels)[idx]  # type: ignore[index]
    clean = CleanFigures("identification top-1", Rate.of(def_pred == labels),
                         Rate.of(bare_pred == labels))
    return DefensePlan(clean, idx, ref, ref, _cost_ms(defense, x[: min(len(x), 16)]))


def attack_part(model: nn.Module, defense: Defense, xs: torch.Tensor, refs: tuple[
        torch.Tensor, torch.Tensor], attack: Any, options: DefenseEvalOptions
                ) -> dict[str, Any]:
    """Every attack column on the attacked samples ``xs`` (references ``refs`` on the bare
    and the defended model), seeded by ``options.seed``: per-sample success masks (n_eps, N)
    by column and the gradient-masking statistics of these samples."""
    start, o = time.perf_counter(), options
    defended = DefendedModel(model, defense)
    crit_bare, crit_def = (make_criterion(o.goal, model, refs[0]),
                           make_criterion(o.goal, defended, refs[1]))
    eps, seed = list(o.epsilons), o.seed
    runs: list[tuple[str, nn.Module, Any, Any]] = [
        ("naive", model, attack, crit_bare),
        ("adaptive", adaptive(defended, eot_samples=_eot(defense, o)), attack, crit_def)]
    if o.direct:
        runs.append(("direct", defended, attack, crit_def))
    if o.blackbox is not None:
        runs.append(("blackbox", defended, o.blackbox, crit_def))
    fooled: dict[str, torch.Tensor] = {}
    undefended = torch.zeros(0)
    bar = tqdm(runs, desc=f"{defense.spec} attacks", disable=not o.progress, leave=False)
    for label, target, atk, crit in bar:
        bar.set_postfix_str(label)
        with crafting(o.precision, model_device(model)):
            advs = _sweep(full_budget(atk), target, xs, crit, eps, seed, defense)
        if label == "naive":  # judged by the float32 forward, not the attack's own check
            undefended = torch.stack([crit_bare.is_adversarial(embed(model, a, o.batch_size))
                                      .bool().cpu() for a in advs])
        _seeded(defense, seed)
        fooled[label] = torch.stack([
            crit_def.is_adversarial(embed(defended, a, o.batch_size)).bool().cpu()
            for a in advs])
    _seeded(defense, seed)
    zero = zero_gradient_fraction(defended, xs, crit_def.loss)
    return {"undefended": undefended, "fooled": fooled, "zero_grad": zero,
            "variation": output_variation(defended, xs), "n": len(xs),
            "seconds": time.perf_counter() - start}


def _flags(parts: list[dict[str, Any]], tables: dict[str, list[Rate] | None],
           eps: list[float]) -> MaskingFlags:
    """The masking checks over every part: the zero-gradient fraction averaged over samples,
    the largest output variation of any part, success tables of the merged columns."""
    def rates(label: str) -> dict[float, float] | None:
        column = tables.get(label)
        return None if column is None else {e: r.rate for e, r in zip(eps, column, strict=True)}

    frac = float(parts[0]["zero_grad"]) if len(parts) == 1 else sum(
        float(p["zero_grad"]) * int(p["n"]) for p in parts) / sum(int(p["n"]) for p in parts)
    var = max(float(p["variation"]) for p in parts)
    white, black = rates("direct") or rates("naive"), rates("blackbox")
    return MaskingFlags(
        zero_grad_fraction=frac, zero_gradients=frac >= ZERO_GRAD_LIMIT,
        output_variation=var, random_outputs=var > RANDOM_TOL,
        blackbox_beats_whitebox=(None if white is None or black is None
                                 else blackbox_beats_whitebox(white, black)),
        success_not_rising=None if white is None else success_not_rising(white))


def merge_defense(model: nn.Module, defense: Defense, attack: Any, options: DefenseEvalOptions,
                  plan: DefensePlan, parts: list[dict[str, Any]]) -> DefenseUnit:
    """The typed result of the parts of every attacked sample, in order (``seconds``: the
    parts' sum; the caller adds its own)."""
    threat: Threat = getattr(attack, "threat", LINF)
    eps, goal = list(options.epsilons), options.goal
    zero = [Rate(0, 0) for _ in eps]
    tables: dict[str, list[Rate] | None] = {"direct": None, "blackbox": None}
    worst, flags = zero, None
    if parts:
        tables["undefended"] = [Rate.of(w) for w in torch.cat(
            [p["undefended"] for p in parts], dim=1)]
        fooled = {label: torch.cat([p["fooled"][label] for p in parts], dim=1)
                  for label in parts[0]["fooled"]}
        tables.update({label: [Rate.of(f) for f in masks] for label, masks in fooled.items()})
        worst = [Rate.of(w) for w in torch.stack(list(fooled.values())).any(0)]
        flags = _flags(parts, tables, eps)
    notes = [] if parts else [f"no sample qualifies for {goal} under the defense; nothing "
                              "attacked"]
    clean = plan.clean
    return DefenseUnit(
        name=defense.spec, slug="".join(c if c.isalnum() else "-" for c in defense.spec),
        params=defense.params(), model=str(getattr(model, "name", type(model).__name__)),
        goal=goal, attack=type(attack).__name__, norm=threat.name, epsilons=eps,
        epsilon_labels=[threat.format_epsilon(e) for e in eps],
        adaptive_mode=adaptive(DefendedModel(model, defense),
                               eot_samples=_eot(defense, options)).mode,
        clean_measure=clean.measure, clean=clean.defended, clean_undefended=clean.undefended,
        far=clean.far, tar_at_far=clean.tars[0], tar_at_far_undefended=clean.tars[1],
        n_attacked=len(plan.idx),
        undefended=tables.get("undefended") or zero, naive=tables.get("naive") or zero,
        adaptive=tables.get("adaptive") or zero, direct=tables.get("direct"),
        blackbox=tables.get("blackbox"), worst_case=worst, ms_per_image=plan.ms_per_image,
        masking=flags.to_dict() if flags else {}, flags=flag_sentences(flags), notes=notes,
        seconds=sum(float(p["seconds"]) for p in parts))


def _judged(model: nn.Module, defense: Defense, x: torch.Tensor, plan: DefensePlan,
            attack: Any, options: DefenseEvalOptions, start: float) -> DefenseUnit:
    """Every attacked sample as one part, merged; ``seconds`` from ``start``."""
    parts = [] if not len(plan.idx) else [
        attack_part(model, defense, x[plan.idx], (plan.ref_bare, plan.ref_defended), attack,
                    options)]
    unit = merge_defense(model, defense, attack, options, plan, parts)
    return replace(unit, seconds=time.perf_counter() - start)


def evaluate_defense(model: nn.Module, defense: Defense, x1: torch.Tensor, x2: torch.Tensor,
                     same: torch.Tensor, attack: Any, options: DefenseEvalOptions
                     ) -> DefenseUnit:
    """Evaluate ``defense`` in front of the FaceModel ``model`` on verification pairs.

    ``x1``/``x2`` are (N, 3, H, W) chips in [0, 1], ``same`` a bool (N,) tensor (True =
    genuine pair). ``attack`` is a facerobust attack (e.g. ``build_attack("pgd", LINF,
    steps=10)``); ``options`` hold the budgets, the goal and the rest. Clean figures use all
    pairs at ``model.threshold``.
    """
    start = time.perf_counter()
    plan = plan_verification(model, defense, x1, x2, same, options)
    return _judged(model, defense, x1, plan, attack, options, start)


def evaluate_defense_identification(
    classifier: nn.Module, defense: Defense, x: torch.Tensor, labels: torch.Tensor,
    attack: Any, options: DefenseEvalOptions, targets: torch.Tensor | None = None,
) -> DefenseUnit:
    """Evaluate ``defense`` in front of a closed-set ``classifier`` (chips -> logits) on
    probes ``x`` with true ``labels``; ``targets`` (one per probe) for goal ``targeted``."""
    start = time.perf_counter()
    plan = plan_identification(classifier, defense, x, labels, options, targets)
    return _judged(classifier, defense, x, plan, attack, options, start)
