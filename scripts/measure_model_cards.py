"""Measure the accuracies on every model card and write src/facerobust/models/cards.json.

    .venv/bin/python scripts/measure_model_cards.py --data /work/shared/data/lfw-gray \
        [--models all] [--pairs 600]
    .venv/bin/python scripts/measure_model_cards.py --dataset lfw-color
    .venv/bin/python scripts/measure_model_cards.py --dataset cfp --protocol ff,fp

For each model: 10-fold verification accuracy (threshold chosen on 9 folds, tested on the
10th) through :func:`facerobust.eval.clean.evaluate_clean` (canonical dlib chips, the model's
own distance), plus the distance threshold at FAR=1e-3. ``lfw-gray`` (LFW's pairs.txt) fills
the card's top-level entry as before; any other dataset (``lfw-color``, ``cfp`` with its
official ``ff`` / ``fp`` protocols) fills ``datasets["lfw-color"]``, ``datasets["cfp-ff"]``,
``datasets["cfp-fp"]``. CFP's two protocols share the model's descriptors of the frontal
photos. ``--pairs N`` keeps the first N pairs round-robin over (fold, same/different) so every
fold stays balanced; the card records how many pairs were used and how many were excluded (no
face found). Results are merged into cards.json entry by entry.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

GRAY = "lfw-gray"


def _entry(res: Any, dataset: str, requested: int | None, threads: int, t0: float
           ) -> dict[str, Any]:
    f = res.figures
    return {
        "dataset": dataset, "pairs_file": res.pairs_file,
        "pairs": f.n_pairs, "pairs_requested": requested or "all",
        "pairs_excluded_no_face": res.n_pairs_excluded,
        "accuracy": f.accuracy, "accuracy_std": f.accuracy_std, "auc": f.auc,
        "eer": f.eer, "tar_at_far_1e-3": f.tar_at_far.rate,
        "threshold_far_1e-3": f.threshold_at_far, "best_threshold": f.best_threshold,
        "seconds": round(time.perf_counter() - t0, 1),
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {threads} torch threads",
    }


def _save(out: Path, name: str, key: str, entry: dict[str, Any]) -> None:
    """Merge one entry into ``out``; a lock file keeps concurrent runs from losing entries."""
    with open(Path(tempfile.gettempdir()) / "facerobust-cards.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(out.read_text()) if out.is_file() else {}
        data.setdefault("generated_by", "scripts/measure_model_cards.py")
        model = data.setdefault("models", {}).setdefault(name, {})
        if key == GRAY:
            model.update(entry)
        else:
            model.setdefault("datasets", {})[key] = entry
        out.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None, help="dataset folder (default: --dataset's)")
    parser.add_argument("--dataset", default=None,
                        help="dataset name: lfw-gray, lfw-color or cfp (default: the --data "
                             "folder's name)")
    parser.add_argument("--protocol", default="ff,fp", help="CFP protocols (comma list)")
    parser.add_argument("--held-out", action="store_true",
                        help="CFP: only the pairs of its held-out people (those also in LFW); "
                             "saved as cfp-ff-held-out / cfp-fp-held-out")
    parser.add_argument("--models", default="all", help="comma list or 'all'")
    parser.add_argument("--pairs", type=int, default=None, help="subsample N pairs (default all)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="cards.json path (default: the package's)")
    args = parser.parse_args(argv)
    if not args.data and not args.dataset:
        parser.error("give --data DIR or --dataset NAME")
    torch.set_num_threads(args.threads)

    from facerobust import models
    from facerobust.data import resolve_dataset
    from facerobust.data.sources import detect_layout
    from facerobust.eval.clean import CleanOptions, evaluate_clean
    from facerobust.models.cards import CARDS_FILE

    root = resolve_dataset(args.dataset, args.data) if args.dataset else Path(args.data)
    dataset = args.dataset or root.name
    cfp = detect_layout(root) == "cfp"
    protocols: list[str | None] = args.protocol.split(",") if cfp else [None]
    out = Path(args.out) if args.out else CARDS_FILE
    names = [s.name for s in models.specs()] if args.models == "all" else args.models.split(",")
    for name in names:
        model = models.load(name)
        descriptors: dict[Path, torch.Tensor] = {}
        for protocol in protocols:
            t0 = time.perf_counter()
            options = CleanOptions(limit_pairs=args.pairs, far=1e-3, protocol=protocol,
                                   batch_size=args.batch_size, held_out=args.held_out)
            res = evaluate_clean(model, root, options, progress=True, descriptors=descriptors)
            key = (f"{dataset}-{protocol}" if protocol else dataset) \
                + ("-held-out" if args.held_out else "")
            _save(out, name, key, _entry(res, dataset, args.pairs, args.threads, t0))
            f = res.figures
            print(f"{name} {key}: accuracy {f.accuracy:.4f} +- {f.accuracy_std:.4f} on "
                  f"{f.n_pairs} pairs ({res.n_pairs_excluded} excluded), threshold@FAR=1e-3 "
                  f"{f.threshold_at_far:.4f}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
