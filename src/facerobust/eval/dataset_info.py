"""Dataset facts for results.json and the log: which dataset a config names, and what an
experiment did with it (layout, protocol, identification split, detectors, skipped files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facerobust.eval.config import AuditConfig, DataConfig
from facerobust.eval.experiment import Experiment


def describe_dataset(exp: Experiment) -> dict[str, Any]:
    """The dataset block of results.json: layout, protocol, split, detectors, skips."""
    cfg = exp.cfg
    per_fold = cfg.data.clean_pairs_per_fold
    ident: dict[str, Any] | None = None
    if exp.split is not None:
        _, probe_labels = exp.probe_rows()
        ident = {"source": (f"head file {exp.cfg.identification.head}"
                            if exp.head_file is not None else "identity_split"),
                 "identities": len(exp.split.names),
                 "identities_requested": cfg.identification.identities,
                 "enrolment_images": len(exp.split.train_paths),
                 "probe_images": int(len(probe_labels)),
                 "head": exp.head_file.describe() if exp.head_file is not None
                 else "cosine-softmax head trained per model on the enrolment images "
                      f"(seed {cfg.run.seed})",
                 "split": exp.split.to_dict(exp.root)}
    ds = exp.dataset
    generated = ds is None or ds.pairs is None
    source = "generated (seeded, identity-disjoint folds; protocol/pairs.txt)" \
        if generated else str(ds.pairs_file if ds is not None else "")
    n_pairs = int(len(exp.pairs))
    folds = len(np.unique(exp.pairs.fold))
    protocol = (f"{per_fold} matched + {per_fold} mismatched pairs of every fold"
                if not generated else
                f"{len(exp.chosen_pairs) // (2 * max(1, folds))} matched + as many "
                "mismatched pairs in each of the generated folds")
    chips = exp.chips
    return {
        "name": dataset_label(cfg, exp.root), "root": str(exp.root),
        "layout": ds.layout if ds is not None else "lfw",
        "identities_total": len(ds.people) if ds is not None else None,
        "images_total": ds.n_images if ds is not None else None,
        "pairs_source": source, "pairs_generated": generated,
        "protocol": f"{protocol} ({n_pairs} usable pairs, {folds} folds)",
        "n_images": len(chips.paths), "pairs_dropped": exp.dropped_pairs,
        "detector": cfg.data.detector, "detectors": chips.detector_counts(),
        "multiple_faces": sum(1 for n in chips.faces_found.values() if n > 1),
        "identification": ident,
        "warnings": ds.warnings if ds is not None else [],
        "missing": [str(p) for p in ds.missing] if ds is not None else [],
        "skipped": [{"path": str(s.path), "reason": s.reason} for s in chips.skipped],
    }


def dataset_label(cfg: AuditConfig, root: Path) -> str:
    """The dataset's name in reports: the configured name, or the folder's when a root is
    given with the default name."""
    if cfg.data.root and cfg.data.dataset == DataConfig().dataset:
        return root.name
    return cfg.data.dataset
