"""A detector study: fit, calibrate, score and adaptively attack one ``[[detector]]`` entry.

Each variant is fitted on the train split (monitors on genuine gallery + train embeddings; the
trajectory LSTM on train clean vs adversarial, checkpoint by validation Macro-AUC), its
threshold set at ``fpr`` on the *validation* clean probes, and judged on the held-out *test*
probes: AUROC per attack with its interval, Macro-AUC, TPR at 1% and 5% FPR, the clean
false-positive rate at the operating threshold, and ms/image. Then PGD attacks the model
naively and adaptively (:mod:`facerobust.detectors.adaptive`) at each budget; success means
fooling the model and staying under the real detector's threshold. The variants of one entry
are the shards of its unit (:class:`DetectorShards`), so Ray runs them in parallel.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facerobust.detectors.base import Detector, Features, threshold_at_fpr
from facerobust.detectors.metrics import auroc, auroc_interval, detected, roc_points
from facerobust.detectors.registry import build_detector, save_detector
from facerobust.eval.detection_adaptive import adaptive_rows
from facerobust.eval.detection_data import DetectionSet, build_detection_set
from facerobust.eval.detector_config import DetectorConfig
from facerobust.eval.experiment import Experiment
from facerobust.eval.results_detection import (
    AttackDetection,
    DetectionData,
    DetectorResult,
    DetectorUnit,
)
from facerobust.eval.shards import Part


class DetectorShards:
    """One ``[[detector]]`` as one shard per variant: shard ``i`` fits, judges and attacks
    variant ``i`` (seeded with the unit's seed, as every variant always was) and returns its
    result with its saved detector file; :meth:`merge` writes the files under ``out`` and
    builds the unit. Variants computed in one process share their features."""

    def __init__(self, exp: Experiment, dcfg: DetectorConfig, key: str, seed: int,
                 out: Path) -> None:
        self.exp, self.dcfg, self.key, self.seed, self.out = exp, dcfg, key, seed, out
        self.cache: dict[str, dict[str, Features]] = {}

    @cached_property
    def data(self) -> DetectionSet:
        return build_detection_set(self.exp, self.dcfg, self.exp.cfg.run.seed)

    def bounds(self) -> list[tuple[int, int]]:
        return [(i, i + 1) for i in range(len(self.dcfg.variant_list))]

    def run(self, index: int) -> Part:
        tic = time.perf_counter()
        exp, dcfg, variant = self.exp, self.dcfg, self.dcfg.variant_list[index]
        model = exp.identification_model(exp.victim)
        det, fresh = (make_detector(dcfg, variant, model, exp.cfg.run.batch_size, self.seed)
                      for _ in range(2))
        name = f"{self.key}-{variant}" if variant else self.key
        with tempfile.TemporaryDirectory(prefix="facerobust-detector-") as tmp:
            saved = SavedDetector(out=Path(tmp), file=f"detectors/{name}.pt",
                                  model_name=exp.victim)
            result = evaluate_detector(det, dcfg, self.data, self.cache, seed=self.seed,
                                       saved=saved, fresh=fresh)
            blob = (Path(tmp) / saved.file).read_bytes()
        return {"result": result.to_dict(), "data": self.data.summary.to_dict(),
                "file": torch.frombuffer(bytearray(blob), dtype=torch.uint8),
                "seconds": time.perf_counter() - tic}

    def merge(self, parts: list[Part]) -> DetectorUnit:
        results = [DetectorResult.from_dict(p["result"], where=self.key) for p in parts]
        for result, part in zip(results, parts, strict=True):
            path = self.out / result.file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(part["file"].numpy().tobytes())
        return DetectorUnit(key=self.key, name=self.dcfg.name, model=self.exp.victim,
                            data=DetectionData.from_dict(parts[0]["data"], where=self.key),
                            results=results, seconds=sum(float(p["seconds"]) for p in parts))


def make_detector(dcfg: DetectorConfig, variant: str, model: torch.nn.Module, batch: int,
                  seed: int) -> Detector:
    options: dict[str, Any] = dict(dcfg.options)
    if dcfg.name == "trajectory":
        rep, metric = variant.split("-")
        options.update(representative="centroid" if rep == "C" else "medoid", metric=metric)
    if dcfg.name in ("trajectory", "iforest"):
        options.setdefault("seed", seed)
    return build_detector(dcfg.name, model, batch_size=batch, where=f"detector {dcfg.name}",
                          **options)


def _features(det: Detector, data: DetectionSet, cache: dict[str, dict[str, Features]]
              ) -> dict[str, Features]:
    if det.feature_key not in cache:
        sets = {"gallery": data.gallery,
                **{f"clean/{s}": x for s, x in data.clean.items()},
                **{f"adv/{s}": x for s, x in data.adversarial.items() if len(x)}}
        cache[det.feature_key] = {k: det.features(x) for k, x in sets.items()}
    return cache[det.feature_key]


def _cat(a: Features, b: Features) -> Features:
    if isinstance(a, torch.Tensor):
        return torch.cat([a, b])
    return [torch.cat([x, y]) for x, y in zip(a, b, strict=True)]


@dataclass(frozen=True)
class SavedDetector:
    """Where a fitted detector is saved: ``file`` relative to the run folder ``out``, tagged
    with the victim ``model_name`` it was fitted on."""

    out: Path
    file: str
    model_name: str

    def __post_init__(self) -> None:
        if not self.file or Path(self.file).is_absolute():
            raise ValueError(f"file must be a path relative to out, got {self.file!r}")
        if not self.model_name:
            raise ValueError("model_name is empty")


def evaluate_detector(det: Detector, dcfg: DetectorConfig, data: DetectionSet,
                      cache: dict[str, dict[str, Features]], *, seed: int,
                      saved: SavedDetector, fresh: Detector | None = None) -> DetectorResult:
    """``det`` on held-out probes (then attacked adaptively and saved as ``saved``);
    ``fresh``, an unfitted twin, on held-out identities."""
    f = _features(det, data, cache)
    threshold, clean_test, per_attack = _fit_and_judge(det, dcfg, data, f, "")
    heldout: list[AttackDetection] = []
    if data.cross_identity:  # fitted on other people: every judged identity is held out
        heldout = per_attack
    elif fresh is not None and "adv/id-train" in f:
        heldout = _fit_and_judge(fresh, dcfg, data, f, "id-")[2]
    save_detector(det, saved.out / saved.file, model_name=saved.model_name)
    return DetectorResult(
        detector=det.name, label=getattr(det, "label", det.name), options=det.options(),
        adaptive_kind=det.adaptive_kind,
        macro_auc=_mean([p.auroc for p in per_attack]),
        macro_auc_by_goal={g: float(np.mean([p.auroc for p in per_attack if p.goal == g]))
                           for g in dcfg.goals if any(p.goal == g for p in per_attack)},
        per_attack=per_attack, macro_auc_heldout_identities=_mean([p.auroc for p in heldout]),
        heldout_identities=heldout, target_fpr=dcfg.fpr, threshold=threshold,
        clean_fpr=detected(clean_test, threshold), ms_per_image=_cost(det, data),
        adaptive_attack="pgd-linf", adaptive_steps=dcfg.adaptive_steps,
        adaptive=adaptive_rows(det, dcfg, data, seed), validation_history=list(
            getattr(det, "history", [])), file=saved.file, notes=_notes(det, data))


def _fit_and_judge(det: Detector, dcfg: DetectorConfig, data: DetectionSet,
                   f: dict[str, Features], prefix: str
                   ) -> tuple[float, np.ndarray, list[AttackDetection]]:
    """Fit on ``{prefix}train``, threshold on ``{prefix}val`` clean, judge on ``{prefix}test``."""
    det.enroll_features(f["gallery"], data.gallery_labels)
    train, val, test = (f"{prefix}{s}" for s in ("train", "val", "test"))
    if det.supervised:
        if f"adv/{train}" not in f:
            raise ValueError(f"{det.name}: no successful adversarial in the {train} split")
        validation = None
        if f"adv/{val}" in f:
            validation = (f[f"clean/{val}"], f[f"adv/{val}"], data.groups[val])
        det.fit_features(f[f"clean/{train}"], f[f"adv/{train}"], validation=validation)
    else:
        det.fit_features(_cat(f["gallery"], f[f"clean/{train}"]))
    threshold = det.calibrate_scores(det.score_features(f[f"clean/{val}"]), dcfg.fpr)
    clean_test = det.score_features(f[f"clean/{test}"])
    adv_test = det.score_features(f[f"adv/{test}"]) if f"adv/{test}" in f else np.array([])
    return threshold, clean_test, _per_attack(clean_test, adv_test, data.groups[test], threshold)


def _per_attack(clean: np.ndarray, adv: np.ndarray, groups: np.ndarray, threshold: float
                ) -> list[AttackDetection]:
    rows = []
    for group in sorted(set(groups.tolist())):
        scores = adv[groups == group]
        auc = auroc(clean, scores)
        attack, goal = group.split("/")
        rows.append(AttackDetection(
            group=group, attack=attack, goal=goal, n_clean=len(clean), n_adversarial=len(scores),
            auroc=auc, auroc_ci95=list(auroc_interval(auc, len(clean), len(scores))),
            tpr_at_1=detected(scores, threshold_at_fpr(clean, 0.01)),
            tpr_at_5=detected(scores, threshold_at_fpr(clean, 0.05)),
            detected=detected(scores, threshold), roc=roc_points(clean, scores)))
    return rows


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _cost(det: Detector, data: DetectionSet) -> float:
    x = data.clean["test"][: det.batch_size]
    tic = time.perf_counter()
    det.score(x)
    return 1000.0 * (time.perf_counter() - tic) / len(x)


def _notes(det: Detector, data: DetectionSet) -> list[str]:
    notes = []
    if data.cross_identity:
        notes.append("fitted on the adversarials of other people (identification.fit_dataset) "
                     "than those judged: every judged identity is held out, so the held-out-"
                     "identity figures are the main ones")
    missing = [g for g, n in data.summary.n_adversarial["test"].items() if n == 0]
    if missing:
        notes.append(f"no successful adversarial in the test split for {', '.join(missing)}: "
                     "left out of the Macro-AUC")
    if det.adaptive_kind == "surrogate":
        fit = getattr(det, "surrogate_fit", float("nan"))
        notes.append(f"the adaptive attack steers by a differentiable surrogate (R^2 {fit:.2f} "
                     "on its fit points); success is judged by the real detector")
    if det.adaptive_kind == "bpda":
        notes.append("the adaptive attack passes bit-depth reduction straight through (BPDA)")
    return notes
