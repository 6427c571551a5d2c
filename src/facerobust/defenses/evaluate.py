"""``evaluate_defense``: one defense, judged on clean pairs, under naive AND adaptive attacks.

What each column means (all success rates are measured on the *deployed* defended model,
``DefendedModel(model, defense)``, with one seeded draw of its randomness, the same draw for
every column):

* ``undefended`` -- the attack against the bare model, judged on the bare model (baseline).
* ``naive`` -- an *oblivious* attacker: adversarials crafted against the bare model (with the
  bare model's reference descriptors), then fed through the defense.
* ``direct`` -- the attack run on the defended model with whatever gradient autograd gives
  (zero for JPEG / bit depth / TVM): what a careless evaluation reports.
* ``adaptive`` -- the attack run on ``adaptive(defended, eot_samples=n)``: BPDA gradients and,
  for randomised defenses, EOT over ``n`` draws.
* ``blackbox`` -- optional score-based attack (e.g. ``SquareAttack``) on the defended model.
* ``worst_case`` -- per sample, success under any of the attacks run.

Attacked samples: for ``goal="dodging"`` the genuine pairs the defended model accepts
(probe ``x1``, enrolled reference ``x2``); for ``"impersonation"`` the impostor pairs it
rejects (the probe must match ``x2``).

Every column runs the attack separately at each epsilon at full strength (``early_stop``
switched off when the attack has it), so a larger budget never reuses a smaller one's
barely-successful adversarial.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import nn
from tqdm import tqdm

from facerobust.defenses.base import Defense
from facerobust.defenses.masking import masking_flags
from facerobust.defenses.model import DefendedModel, adaptive

Goal = Literal["dodging", "impersonation"]
SEED = 0


@dataclass
class DefenseResult:
    """Everything reported for one defense (JSON via :meth:`to_dict` / :meth:`to_json`).

    Success tables map epsilon -> fraction of the ``n_attacked`` samples fooled.
    """

    name: str
    params: dict[str, Any]
    model: str
    goal: str
    attack: str
    norm: str
    epsilons: list[float]
    n_pairs: int
    n_attacked: int
    clean_accuracy: float
    clean_accuracy_undefended: float
    tar_at_far: float
    tar_at_far_undefended: float
    far: float
    undefended: dict[float, float]
    naive: dict[float, float]
    adaptive: dict[float, float]
    adaptive_mode: str
    direct: dict[float, float] | None
    blackbox: dict[float, float] | None
    worst_case: dict[float, float]
    ms_per_image: float
    masking: dict[str, Any]
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("undefended", "naive", "adaptive", "direct", "blackbox", "worst_case"):
            if out[key] is not None:
                out[key] = {repr(float(e)): float(s) for e, s in out[key].items()}
        return out

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DefenseResult:
        d = dict(data)
        for key in ("undefended", "naive", "adaptive", "direct", "blackbox", "worst_case"):
            if d.get(key) is not None:
                d[key] = {float(e): float(s) for e, s in d[key].items()}
        return cls(**d)


def accuracy_at_threshold(distances: torch.Tensor, same: torch.Tensor, threshold: float) -> float:
    """Fraction of pairs decided correctly by ``distance <= threshold``."""
    return float(((distances <= threshold) == same).float().mean().item())


def tar_at_far(distances: torch.Tensor, same: torch.Tensor, far: float) -> float:
    """Empirical TAR at the largest threshold whose FAR is <= ``far`` (resolution 1/#impostors;
    a threshold strictly below the closest impostor when ``far * #impostors < 1``)."""
    genuine, impostor = distances[same], distances[~same]
    if len(genuine) == 0 or len(impostor) == 0:
        raise ValueError("TAR@FAR needs both genuine and impostor pairs")
    allowed = int(far * len(impostor))
    imp = impostor.sort().values
    if allowed >= len(imp):
        return 1.0
    # accept d < imp[allowed]: at most `allowed` impostors accepted
    return float((genuine < imp[allowed]).float().mean().item())


def _seeded(defense: Defense, seed: int) -> Defense:
    return defense.set_generator(torch.Generator().manual_seed(seed))


@torch.no_grad()
def _embed(model: nn.Module, x: torch.Tensor, batch: int) -> torch.Tensor:
    return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def _cost_ms(defense: Defense, x: torch.Tensor, repeats: int = 3) -> float:
    times = []
    with torch.no_grad():
        defense(x[:1])
        for _ in range(repeats):
            t0 = time.perf_counter()
            defense(x)
            times.append(time.perf_counter() - t0)
    return 1000 * sorted(times)[len(times) // 2] / len(x)


def full_strength(attack: Any) -> Any:
    """A copy of ``attack`` that keeps optimising after the first success (``early_stop``
    off), so adversarials are not left just across the threshold of the attacked model."""
    if getattr(attack, "early_stop", False):
        attack = copy.copy(attack)
        attack.early_stop = False
    return attack


def _sweep(attack: Any, target: nn.Module, x: torch.Tensor, crit: Any, eps: list[float],
           seed: int, defense: Defense) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Run ``attack`` separately at each epsilon (seeded alike); adversarials and the
    attacked model's own success (n_eps, N)."""
    advs, wins = [], []
    for e in eps:
        _seeded(defense, seed)
        gen = torch.Generator().manual_seed(seed)
        result = attack(target, x, crit, epsilons=[e], generator=gen)
        advs.append(result.clipped[0])
        wins.append(result.success[0])
    return advs, torch.stack(wins)


def _check_pairs(x1: torch.Tensor, x2: torch.Tensor, same: torch.Tensor) -> None:
    if x1.shape != x2.shape or x1.ndim != 4:
        raise ValueError(f"x1 and x2 must be equal (N, C, H, W) batches, got "
                         f"{tuple(x1.shape)} and {tuple(x2.shape)}")
    if same.dtype != torch.bool or same.shape != (len(x1),):
        raise ValueError(f"same must be a bool tensor of shape ({len(x1)},), got "
                         f"{same.dtype} {tuple(same.shape)}")


def evaluate_defense(
    model: nn.Module,
    defense: Defense,
    x1: torch.Tensor,
    x2: torch.Tensor,
    same: torch.Tensor,
    *,
    attack: Any,
    epsilons: Sequence[float],
    goal: Goal = "dodging",
    eot_samples: int | None = None,
    n_attack: int | None = None,
    direct: bool = True,
    blackbox: Any | None = None,
    far: float = 1e-3,
    batch_size: int = 32,
    seed: int = SEED,
    progress: bool = False,
) -> DefenseResult:
    """Evaluate ``defense`` in front of the FaceModel ``model`` on verification pairs.

    ``x1``/``x2`` are (N, 3, H, W) chips in [0, 1], ``same`` a bool (N,) tensor (True =
    genuine pair). ``attack`` is a facerobust attack instance (e.g. ``PGD(steps=10)``),
    ``blackbox`` an optional one (e.g. ``SquareAttack(...)``). ``eot_samples`` defaults to 8
    for randomised defenses; deterministic defenses always use 1 (EOT over a deterministic
    transform only repeats work). ``n_attack`` caps the attacked samples.
    Clean figures use all pairs; accuracy is at ``model.threshold``.
    """
    from facerobust.attacks.criteria import Dodging, Impersonation

    if goal not in ("dodging", "impersonation"):
        raise ValueError(f"goal must be 'dodging' or 'impersonation', got {goal!r}")
    _check_pairs(x1, x2, same)
    if n_attack is not None and n_attack < 1:
        raise ValueError(f"n_attack must be >= 1, got {n_attack}")
    eps = [float(e) for e in epsilons]
    if not eps:
        raise ValueError("epsilons is empty")
    start = time.perf_counter()
    defended = DefendedModel(model, defense)
    if not defense.randomized:
        eot_samples = 1
    threshold = float(defended.threshold)
    kind = Dodging if goal == "dodging" else Impersonation

    bare1, bare2 = _embed(model, x1, batch_size), _embed(model, x2, batch_size)
    _seeded(defense, seed)
    def1, def2 = _embed(defended, x1, batch_size), _embed(defended, x2, batch_size)
    d_bare, d_def = model.distance(bare1, bare2), defended.distance(def1, def2)

    wanted = same & (d_def <= threshold) if goal == "dodging" else ~same & (d_def > threshold)
    idx = wanted.nonzero()[:, 0]
    if n_attack is not None:
        idx = idx[:n_attack]
    notes: list[str] = []
    tables: dict[str, dict[float, float] | None] = {"direct": None, "blackbox": None}
    fooled: dict[str, torch.Tensor] = {}
    if len(idx) == 0:
        notes.append(f"no pair qualifies for {goal} under the defense; nothing attacked")
        zero = {e: 0.0 for e in eps}
        tables.update(undefended=zero, naive=dict(zero), adaptive=dict(zero))
        flags: dict[str, Any] = {}
    else:
        xs = x1[idx]
        crit_bare = kind.for_model(model, bare2[idx])
        crit_def = kind.for_model(defended, def2[idx])
        view = adaptive(defended, eot_samples=eot_samples)

        def judge(advs: list[torch.Tensor]) -> torch.Tensor:
            _seeded(defense, seed)
            return torch.stack([crit_def.is_adversarial(_embed(defended, a, batch_size)).cpu()
                                for a in advs])

        runs: list[tuple[str, nn.Module, Any, Any]] = [
            ("naive", model, attack, crit_bare), ("adaptive", view, attack, crit_def)]
        if direct:
            runs.append(("direct", defended, attack, crit_def))
        if blackbox is not None:
            runs.append(("blackbox", defended, blackbox, crit_def))
        bar = tqdm(runs, desc=f"{defense.spec} attacks", disable=not progress, leave=False)
        for label, target, atk, crit in bar:
            bar.set_postfix_str(label)
            advs, wins = _sweep(full_strength(atk), target, xs, crit, eps, seed, defense)
            if label == "naive":
                tables["undefended"] = dict(zip(eps, wins.float().mean(1).tolist(), strict=True))
            fooled[label] = judge(advs)
            tables[label] = dict(zip(eps, fooled[label].float().mean(1).tolist(), strict=True))
        _seeded(defense, seed)
        flags = masking_flags(defended, xs, loss_fn=crit_def.loss,
                              whitebox=tables["direct"] or tables["naive"],
                              blackbox=tables["blackbox"]).to_dict()
    worst = (torch.stack(list(fooled.values())).any(0).float().mean(1).tolist()
             if fooled else [0.0] * len(eps))
    return DefenseResult(
        name=defense.spec, params=defense.params(), model=str(getattr(model, "name", "model")),
        goal=goal, attack=repr(attack), norm=str(getattr(attack, "norm", "linf")),
        epsilons=eps, n_pairs=len(x1), n_attacked=len(idx),
        clean_accuracy=accuracy_at_threshold(d_def, same, threshold),
        clean_accuracy_undefended=accuracy_at_threshold(d_bare, same, threshold),
        tar_at_far=tar_at_far(d_def, same, far),
        tar_at_far_undefended=tar_at_far(d_bare, same, far),
        far=far, undefended=tables["undefended"] or {}, naive=tables["naive"] or {},
        adaptive=tables["adaptive"] or {},
        adaptive_mode=adaptive(defended, eot_samples=eot_samples).mode,
        direct=tables["direct"], blackbox=tables["blackbox"],
        worst_case=dict(zip(eps, worst, strict=True)),
        ms_per_image=_cost_ms(defense, x1[: min(len(x1), 16)]), masking=flags,
        seconds=time.perf_counter() - start, notes=notes,
    )
