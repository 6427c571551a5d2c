"""Build and judge ``dlib-resnet-hardened`` (issue 29): dlib-resnet fine-tuned with the pinned
TRADES recipe :data:`HARDENED_RECIPE` on CFP's training people (CFP minus the people also in
LFW), judged on colour LFW's View 2 pairs (people it never saw) against the original at the
operating threshold: clean accuracy, genuine accept, impostor reject, PGD-``steps`` dodging at
``eps`` and, so that a gain is not gradient masking, PGD-40 with restarts, PGD at twice the
budget and Carlini-Wagner L2 beside it. Every figure is a :class:`~facerobust.core.stats.Rate`
(k/n, 95% Wilson interval).

``facerobust models build dlib-resnet-hardened`` runs :func:`build_hardened`; the weights go
to :func:`facerobust.models.dlib_hardened.built_path` with ``<name>.card.json`` beside them.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from facerobust.attacks.base import check_int, check_positive
from facerobust.attacks.cw import CWOptions
from facerobust.attacks.pgd import PGDOptions
from facerobust.attacks.registry import build_attack
from facerobust.attacks.threat import L2, LINF
from facerobust.core.embedding import embed
from facerobust.core.stats import Rate
from facerobust.data.cfp import training_people
from facerobust.data.chips import load_chips
from facerobust.data.resolve import resolve_dataset
from facerobust.defenses.hardening import dodging_rate, with_restarts
from facerobust.defenses.training import FinetuneOptions, adversarial_finetune
from facerobust.eval.datasource import as_dataset, verification_sample
from facerobust.models import load
from facerobust.models.base import FaceModel, accepts, pair_distance
from facerobust.models.dlib_hardened import NAME, built_path, card_path, save_hardened

CARD_KIND = "hardened-card"
# the pinned recipe (chosen by the measurements in docs/studies.md "dlib-resnet-hardened")
HARDENED_RECIPE = FinetuneOptions(
    loss="trades", epochs=4, eps=2 / 255, steps=3, layers="all", augment=False, lr=1e-4,
    batch_size=16, keep=30.0, beta=10.0, trades_target="clean", spread=True,
    bf16_attack=True, schedule="cosine", seed=0, checkpoint_seconds=300.0)


@dataclass(frozen=True)
class JudgeOptions:
    """Attack budgets and sample sizes of :func:`judge_on_pairs`: PGD-``steps`` at ``eps`` on
    ``n_attack`` accepted genuine pairs; PGD-``adaptive_steps`` x ``restarts``, PGD at
    ``larger * eps`` and CW-L2 (``cw_steps``, L2 budget ``cw_l2``) on the first ``n_strong``."""

    eps: float = 2 / 255
    steps: int = 10
    n_attack: int = 200
    n_strong: int = 60
    adaptive_steps: int = 40
    restarts: int = 2
    larger: float = 2.0
    cw_l2: float = 0.5
    cw_steps: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("eps", "larger", "cw_l2"):
            check_positive(name, getattr(self, name))
        for name in ("steps", "n_attack", "n_strong", "adaptive_steps", "restarts", "cw_steps"):
            check_int(name, getattr(self, name))


@dataclass(frozen=True)
class PairData:
    """Chips and the pairs over them (indices ``a``, ``b``, ``same`` flags)."""

    chips: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    same: torch.Tensor


def lfw_pairs_data(dataset: str = "lfw-color", data: Path | str | None = None) -> PairData:
    """View 2 pairs of ``dataset`` whose two photos align (the studies' one pair sample)."""
    sample = verification_sample(as_dataset(resolve_dataset(dataset, data)), limit_pairs=None,
                                 seed=0)
    pairs = sample.pairs
    return PairData(sample.chipset.chips, torch.as_tensor(pairs.a), torch.as_tensor(pairs.b),
                    torch.as_tensor(pairs.same))


def cfp_training_chips(data: Path | str | None = None, *, limit: int | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned chips and person labels of CFP's training people (frontal and profile photos
    HOG finds a face in; the first ``limit`` people only when given)."""
    people = list(training_people(resolve_dataset("cfp", data)).items())[:limit]
    owner = {p: k for k, (_, photos) in enumerate(people) for p in photos}
    chips = load_chips(list(owner), cache=True, progress=True, detector="hog")
    return chips.chips, torch.tensor([owner[p] for p in chips.paths])


def attack_sample(pairs: PairData, emb: torch.Tensor, options: JudgeOptions
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Probe chips and reference descriptors (``emb``: the model's, of every chip) of the
    seeded sample of ``options.n_attack`` genuine pairs (the same rows for every model)."""
    genuine = pairs.same.nonzero()[:, 0]
    g = torch.Generator().manual_seed(options.seed)
    rows = genuine[torch.randperm(len(genuine), generator=g)[:options.n_attack]]
    return pairs.chips[pairs.a[rows]], emb[pairs.b[rows]]


def judge_on_pairs(model: nn.Module, pairs: PairData, options: JudgeOptions,
                   emb: torch.Tensor | None = None) -> dict[str, Rate]:
    """Clean and attacked figures of ``model`` at its own threshold on ``pairs``; attacks run
    on :func:`attack_sample`. ``emb``: the model's descriptors of every chip, when the caller
    has them already."""
    o = options
    emb = embed(model, pairs.chips, 64) if emb is None else emb
    face = cast(FaceModel, model)  # duck-typed: any module with .metric and .threshold
    ok = accepts(pair_distance(emb[pairs.a], emb[pairs.b], face.metric), float(face.threshold))
    x, ref = attack_sample(pairs, emb, o)
    pgd = build_attack("pgd", LINF, PGDOptions(steps=o.steps))
    strong = with_restarts(build_attack("pgd", LINF, PGDOptions(
        steps=o.adaptive_steps, early_stop=False)), o.restarts)
    cw = build_attack("cw", L2, CWOptions(steps=o.cw_steps, binary_search_steps=3,
                                          initial_const=1.0))
    n = o.n_strong
    return {
        "clean_accuracy": Rate.of(ok == pairs.same),
        "genuine_accept": Rate.of(ok[pairs.same]),
        "impostor_reject": Rate.of(~ok[~pairs.same]),
        "pgd": dodging_rate(model, x, ref, pgd, o.eps, o.seed),
        "pgd_adaptive": dodging_rate(model, x[:n], ref[:n], strong, o.eps, o.seed),
        "pgd_larger": dodging_rate(model, x[:n], ref[:n], pgd, o.larger * o.eps, o.seed),
        "cw_l2": dodging_rate(model, x[:n], ref[:n], cw, o.cw_l2, o.seed),
    }


def describe(o: JudgeOptions) -> dict[str, str]:
    """One line per figure of :func:`judge_on_pairs`."""
    eps = f"{o.eps * 255:g}/255"
    return {
        "clean_accuracy": "View 2 pairs right at the model's threshold",
        "genuine_accept": "genuine pairs accepted", "impostor_reject": "impostor pairs rejected",
        "pgd": f"PGD-{o.steps} dodging at Linf {eps} (accepted genuine pairs of a seeded "
               f"sample of {o.n_attack})",
        "pgd_adaptive": f"PGD-{o.adaptive_steps} x {o.restarts} restarts, full budget, at "
                        f"{eps} (first {o.n_strong} of the sample)",
        "pgd_larger": f"PGD-{o.steps} at Linf {o.larger * o.eps * 255:g}/255 (first "
                      f"{o.n_strong})",
        "cw_l2": f"Carlini-Wagner L2 dodging within L2 {o.cw_l2:g} (first {o.n_strong})",
    }


def build_hardened(*, out: Path | None = None, recipe: FinetuneOptions = HARDENED_RECIPE,
                   data: Path | str | None = None, limit_people: int | None = None,
                   judge: JudgeOptions | None = JudgeOptions(), progress: bool = True
                   ) -> dict[str, Any]:
    """Fine-tune dlib-resnet with ``recipe`` on CFP's training people, save it (float16
    difference) at ``out`` (default: where the zoo looks), judge it and the original on
    colour LFW when ``judge`` is given, and write the card beside the weights. A killed run
    resumes from ``<out>.ckpt``."""
    out = Path(out) if out is not None else built_path()
    start = time.perf_counter()
    chips, labels = cfp_training_chips(data, limit=limit_people)
    original = load("dlib-resnet")
    o = replace(recipe, checkpoint=str(out.with_name(out.name + ".ckpt")), progress=progress)
    tuned, report = adversarial_finetune(original, chips, labels, o)
    recipe_doc = {k: v for k, v in asdict(recipe).items() if k not in ("checkpoint", "progress")}
    save_hardened(out, tuned, original, recipe_doc)
    card: dict[str, Any] = {
        "kind": CARD_KIND, "name": NAME, "weights": out.name, "recipe": recipe_doc,
        "training": {"data": "cfp training people (CFP minus LFW overlap)",
                     "people": int(labels.unique().numel()), "chips": len(chips),
                     "steps": report.steps_done, "seconds": round(report.seconds, 1),
                     "loss_history": report.loss_history}}
    if judge is not None:
        pairs = lfw_pairs_data(data=data)
        card["judged"] = {"dataset": "lfw-color", "pairs": len(pairs.a),
                          "options": asdict(judge), "conditions": describe(judge),
                          "original": {k: v.to_dict() for k, v in judge_on_pairs(
                              original, pairs, judge).items()},
                          "hardened": {k: v.to_dict() for k, v in judge_on_pairs(
                              tuned.eval(), pairs, judge).items()}}
    card["seconds_total"] = round(time.perf_counter() - start, 1)
    card_path(out).write_text(json.dumps(card, indent=1))
    Path(o.checkpoint or "").unlink(missing_ok=True)
    return card
