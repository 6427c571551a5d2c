"""Screen adversarial fine-tuning recipes for dlib-resnet-hardened (docs/studies.md, "A second
search"): each recipe is the pinned ``HARDENED_RECIPE`` with the given changes, trained on
CFP's training people and judged on colour LFW's View 2 pairs at the operating threshold (clean
accuracy, genuine accept, impostor reject, PGD-10 dodging at 2/255 on the accepted genuine
pairs of a seeded sample of ``--attack-pairs``), then again at the threshold where the model
rejects ``--reject`` of LFW's impostor pairs (read off the judged pairs: it compares recipes,
it is not a deployable threshold).

    FACEROBUST_DATA=/work/shared/data .venv/bin/python benchmarks/hardening_screen.py \\
        --recipes '[{"name": "keep10", "epochs": 1, "keep": 10.0}]' --out runs/screen.jsonl

``{"name": "shipped"}`` judges the shipped model, ``{"name": "dlib"}`` the untrained one.
One JSON line per recipe goes to ``--out`` (appended: a killed run keeps finished recipes),
then a ``RESULT`` line per recipe: ``RESULT name=<n> clean=<acc> impostor_reject=<r>
pgd=<rate> pgd_matched=<rate> matched_threshold=<t>``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch


def _matched_threshold(dist: torch.Tensor, same: torch.Tensor, reject: float) -> float:
    """The distance below which ``1 - reject`` of the impostor pairs fall."""
    impostors = dist[~same].sort().values
    return float(impostors[int((1 - reject) * len(impostors))])


def _judge(model: Any, pairs: Any, n_attack: int, reject: float) -> dict[str, Any]:
    from facerobust.attacks.pgd import PGDOptions
    from facerobust.attacks.registry import build_attack
    from facerobust.attacks.threat import LINF
    from facerobust.core.embedding import embed
    from facerobust.defenses.hardening import dodging_rate
    from facerobust.eval.hardened import JudgeOptions, attack_sample, judge_on_pairs
    from facerobust.models.base import pair_distance

    o = JudgeOptions(n_attack=n_attack, n_strong=1, adaptive_steps=1, restarts=1, cw_steps=1)
    emb = embed(model, pairs.chips, 64)
    found = judge_on_pairs(model, pairs, o, emb)
    t = _matched_threshold(pair_distance(emb[pairs.a], emb[pairs.b], model.metric),
                           pairs.same, reject)
    own = model.threshold
    model.threshold = t  # the same sample as judge_on_pairs, at the matched threshold
    matched = dodging_rate(model, *attack_sample(pairs, emb, o),
                           build_attack("pgd", LINF, PGDOptions(steps=o.steps)), o.eps, o.seed)
    model.threshold = own
    out = {k: found[k].to_dict() for k in ("clean_accuracy", "genuine_accept",
                                            "impostor_reject", "pgd")}
    return out | {"matched_threshold": t, "pgd_matched": matched.to_dict()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", required=True,
                        help="JSON list of objects: a name plus FinetuneOptions changes")
    parser.add_argument("--out", type=Path, required=True, help="JSON-lines file (appended)")
    parser.add_argument("--attack-pairs", type=int, default=100)
    parser.add_argument("--reject", type=float, default=0.995,
                        help="impostor rejection of the matched threshold (default 0.995)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    recipes = json.loads(args.recipes)
    if not isinstance(recipes, list) or not all(isinstance(r, dict) and "name" in r
                                                for r in recipes):
        parser.error("--recipes must be a JSON list of objects, each with a 'name'")
    torch.set_num_threads(args.threads)

    from facerobust.defenses.training import adversarial_finetune
    from facerobust.eval.hardened import HARDENED_RECIPE, cfp_training_chips, lfw_pairs_data
    from facerobust.models import load

    for r in recipes:  # every option is checked before the hour of training
        changes = {k: v for k, v in r.items() if k != "name"}
        if r["name"] not in ("shipped", "dlib"):
            HARDENED_RECIPE.replace(**changes)
    chips, labels = cfp_training_chips()
    pairs = lfw_pairs_data()
    for r in recipes:
        changes = {k: v for k, v in r.items() if k != "name"}
        tic, steps = time.perf_counter(), 0
        model: Any
        if r["name"] in ("shipped", "dlib"):
            model = load("dlib-resnet-hardened" if r["name"] == "shipped" else "dlib-resnet")
        else:
            options = HARDENED_RECIPE.replace(checkpoint=None, **changes)
            model, report = adversarial_finetune(load("dlib-resnet"), chips, labels, options)
            steps = report.steps_done
        row = {"name": r["name"], "changes": changes, "steps": steps,
               "train_seconds": round(time.perf_counter() - tic, 1),
               **_judge(model.eval(), pairs, args.attack_pairs, args.reject)}
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"RESULT name={r['name']} clean={row['clean_accuracy']['rate']:.4f} "
              f"impostor_reject={row['impostor_reject']['rate']:.4f} "
              f"pgd={row['pgd']['rate']:.4f} pgd_matched={row['pgd_matched']['rate']:.4f} "
              f"matched_threshold={row['matched_threshold']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
