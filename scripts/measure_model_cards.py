"""Measure the LFW numbers on every model card and write src/facerobust/models/cards.json.

    .venv/bin/python scripts/measure_model_cards.py --data /work/shared/data/lfw-gray \
        [--models all] [--pairs 600]

For each model: 10-fold LFW (lfw-gray, pairs.txt) accuracy through
:func:`facerobust.eval.clean.evaluate_clean` (canonical dlib chips, the model's own distance),
plus the distance threshold at FAR=1e-3. ``--pairs N`` keeps the first N pairs round-robin over
(fold, same/different) so every fold stays balanced; the card records how many pairs were used
and how many were excluded (no face found). Results are merged into cards.json model by model.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="LFW folder with pairs.txt (lfw-gray)")
    parser.add_argument("--models", default="all", help="comma list or 'all'")
    parser.add_argument("--pairs", type=int, default=None, help="subsample N pairs (default all)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="cards.json path (default: the package's)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from facerobust import models
    from facerobust.eval.clean import CleanOptions, evaluate_clean
    from facerobust.models.cards import CARDS_FILE

    out = Path(args.out) if args.out else CARDS_FILE
    names = [s.name for s in models.specs()] if args.models == "all" else args.models.split(",")
    for name in names:
        model = models.load(name)
        t0 = time.perf_counter()
        options = CleanOptions(limit_pairs=args.pairs, far=1e-3, batch_size=args.batch_size)
        res = evaluate_clean(model, Path(args.data), options, progress=True)
        f = res.figures
        entry = {
            "dataset": Path(args.data).name, "pairs_file": res.pairs_file,
            "pairs": f.n_pairs, "pairs_requested": args.pairs or "all",
            "pairs_excluded_no_face": res.n_pairs_excluded,
            "accuracy": f.accuracy, "accuracy_std": f.accuracy_std, "auc": f.auc,
            "eer": f.eer, "tar_at_far_1e-3": f.tar_at_far.rate,
            "threshold_far_1e-3": f.threshold_at_far, "best_threshold": f.best_threshold,
            "seconds": round(time.perf_counter() - t0, 1),
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {args.threads} torch threads",
        }
        data = json.loads(out.read_text()) if out.is_file() else {}
        data.setdefault("generated_by", "scripts/measure_model_cards.py")
        data.setdefault("models", {})[name] = entry
        out.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        print(f"{name}: accuracy {f.accuracy:.4f} +- {f.accuracy_std:.4f} on {f.n_pairs} "
              f"pairs, threshold@FAR=1e-3 {f.threshold_at_far:.4f}", file=sys.stderr,
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
