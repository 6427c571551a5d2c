"""``facerobust models calibrate``: the threshold of your own model at a false-accept rate,
measured on your data with the clean-evaluation core (:func:`facerobust.eval.clean.
evaluate_clean`: the dataset's pairs, or a generated 10-fold protocol), written as the model's
card beside its spec.

>>> card = calibrate("my-arcface.toml", CalibrationOptions(far=1e-3))   # doctest: +SKIP
>>> card["threshold"], card["tar_at_far"]                               # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facerobust.eval.clean import CleanOptions, evaluate_clean
from facerobust.eval.datasource import DataSource
from facerobust.models.spec_file import read_model_spec
from facerobust.models.spec_model import build_spec_model


@dataclass(frozen=True)
class CalibrationOptions:
    """Where and how: ``source`` (default: the spec's ``calibration.data``), ``far`` (default:
    the spec's ``calibration.far``, else 1e-3), at most ``limit_pairs`` pairs."""

    source: DataSource | None = None
    far: float | None = None
    limit_pairs: int | None = None
    detector: str = "hog+cnn"
    batch_size: int = 32
    progress: bool = False


def calibrate(spec_path: str | Path, options: CalibrationOptions | None = None
              ) -> dict[str, Any]:
    """Measure the spec model's threshold at the FAR and write its card; the card."""
    o = options or CalibrationOptions()
    spec = read_model_spec(spec_path)
    cal = spec.calibration
    source = o.source
    if source is None:
        if cal is None or not cal.data:
            raise ValueError(f"{spec.path}: no data to calibrate on: pass --data DIR or set "
                             "calibration.data")
        source = DataSource(data=spec.path.parent / Path(cal.data).expanduser())
    far = o.far if o.far is not None else (cal.far if cal is not None else 1e-3)
    model = build_spec_model(spec, require_threshold=False)
    model.requires_grad_(False)
    res = evaluate_clean(model, source.root(),
                         CleanOptions(limit_pairs=o.limit_pairs, far=far, detector=o.detector,
                                      batch_size=o.batch_size),
                         name=spec.name, progress=o.progress)
    f = res.figures
    card = {
        "name": spec.name, "threshold": f.threshold_at_far, "far": far, "metric": model.metric,
        "accuracy": f.accuracy, "accuracy_std": f.accuracy_std, "auc": f.auc, "eer": f.eer,
        "tar_at_far": f.tar_at_far.rate, "best_threshold": f.best_threshold,
        "n_pairs": f.n_pairs, "n_pairs_excluded": res.n_pairs_excluded,
        "data": res.dataset, "layout": res.layout, "protocol": f.protocol,
        "pairs_file": res.pairs_file, "detector": o.detector,
        "embedding_dim": model.embedding_dim,
        "calibrated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if not f.threshold_at_far > 0:
        raise ValueError(f"{spec.path}: no positive threshold reaches FAR {far:g} on "
                         f"{res.dataset} ({f.n_pairs} pairs); use more pairs or a larger FAR")
    spec.card_path().write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card
