"""Detector benchmark: runs (or resumes) a detector audit and prints each detector's Macro-AUC
per goal beside Massoli et al.'s figures, its held-out-identity Macro-AUC, each attack's AUROC
with its 95% interval and sample counts, and the naive vs adaptive evasion at the largest
budget; the last line is the RESULT line (``<detector>=<Macro-AUC>`` fields, then
``<detector>_targeted``, ``_untargeted`` and ``_heldout`` ones).

    .venv/bin/python benchmarks/detector_auc.py                       # examples/detectors.toml
    .venv/bin/python benchmarks/detector_auc.py --config my.toml --out runs/det-bench
    # fitted on CFP people, judged on colour-LFW people (issue #29; ~50 min on 1 thread)
    .venv/bin/python benchmarks/detector_auc.py --config examples/detectors-paper.toml

Massoli et al. (CVIU 2020), VGGFace2, LSTM + medoids + cosine: Macro-AUC 0.960 (targeted),
0.819 (untargeted).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

PAPER = {"targeted": 0.960, "untargeted": 0.819}
ROOT = Path(__file__).resolve().parents[1]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "examples" / "detectors.toml")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "detector-benchmark")
    args = parser.parse_args()
    from facerobust.eval.audit import run_audit
    from facerobust.eval.config import load_config

    tic = time.perf_counter()
    path = run_audit(load_config(args.config), args.out, progress=False,
                     config_text=args.config.read_text(encoding="utf-8"))
    doc = json.loads(path.read_text(encoding="utf-8"))
    fields: list[str] = []
    extra: list[str] = []  # per goal and held-out identities, after the original fields
    for unit in doc["detectors"]:
        for res in unit["results"]:
            by_goal = res["macro_auc_by_goal"]
            top = [a for a in res["adaptive"] if a["epsilon"] == max(
                r["epsilon"] for r in res["adaptive"])]
            evasion = " ".join(
                f"{a['goal']} naive {a['naive_evades']['k']}/{a['naive_evades']['n']} adaptive "
                f"{a['adaptive_evades']['k']}/{a['adaptive_evades']['n']}" for a in top)
            print(f"{res['label']:<22} macro {_fmt(res['macro_auc'])}  targeted "
                  f"{_fmt(by_goal.get('targeted'))} (paper {PAPER['targeted']})  untargeted "
                  f"{_fmt(by_goal.get('untargeted'))} (paper {PAPER['untargeted']})  held-out "
                  f"identities {_fmt(res['macro_auc_heldout_identities'])}  clean FPR "
                  f"{res['clean_fpr']['k']}/{res['clean_fpr']['n']}  "
                  f"{res['ms_per_image']:.1f} ms/img  at {top[0]['epsilon_label'] if top else '-'}"
                  f": {evasion}")
            for row in res["per_attack"]:
                low, high = row["auroc_ci95"]
                print(f"    {row['group']:<18} AUROC {row['auroc']:.3f} [{low:.3f}, {high:.3f}]"
                      f"  {row['n_clean']} clean vs {row['n_adversarial']} adversarial")
            slug = res["label"].replace(" ", "_").replace("-", "_")
            fields.append(f"{slug}={_fmt(res['macro_auc'])}")
            extra += [f"{slug}_{goal}={_fmt(by_goal.get(goal))}" for goal in PAPER]
            extra.append(f"{slug}_heldout={_fmt(res['macro_auc_heldout_identities'])}")
    print(f"wall {time.perf_counter() - tic:.0f} s (units already done are reused)")
    print("RESULT " + " ".join(fields + extra))


if __name__ == "__main__":
    main()
