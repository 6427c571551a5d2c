from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from facerobust.data.lfw import LFWPairs, Pair
from facerobust.eval.clean import CleanEvaluation, CleanOptions, evaluate_clean
from facerobust.eval.tasks import select_pairs
from tests.helpers.models import PooledPixels


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_select_pairs_spreads_over_folds_and_classes() -> None:
    pairs = [Pair(Path(f"{f}{s}{i}a"), Path(f"{f}{s}{i}b"), s, f)
             for f in range(10) for s in (True, False) for i in range(300)]
    chosen = select_pairs(pairs, 40)
    assert len(chosen) == 40
    assert {(p.fold, p.same) for p in chosen} == {(f, s) for f in range(10) for s in (1, 0)}
    assert select_pairs(pairs, None) == pairs
    assert [pairs.index(p) for p in chosen] == sorted(pairs.index(p) for p in chosen)
    with pytest.raises(ValueError, match="limit_pairs must be an integer >= 2"):
        select_pairs(pairs, 1)


@pytest.mark.data
def test_evaluate_clean_on_real_pairs_excludes_unalignable(lfw_root: Path, tmp_path: Path,
                                                          cache: Path) -> None:
    """A small LFW copy where one image has no face: its pairs are excluded and counted."""
    src = LFWPairs(lfw_root)
    root = tmp_path / "mini"
    lines = ["2 6"]
    for fold in (0, 1):
        for same in (True, False):
            for p in [q for q in src.pairs if q.fold == fold and q.same == same][:6]:
                for path in (p.path_a, p.path_b):
                    dst = root / "images" / path.parent.name / path.name
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, dst)
                a, b = p.path_a.stem.rsplit("_", 1), p.path_b.stem.rsplit("_", 1)
                lines.append(f"{a[0]} {int(a[1])} {int(b[1])}" if same
                             else f"{a[0]} {int(a[1])} {b[0]} {int(b[1])}")
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    blank_pair = LFWPairs(root).pairs[0]
    cv2.imwrite(str(blank_pair.path_a), np.zeros((250, 250), np.uint8))  # no face now
    n_with_blank = sum(blank_pair.path_a in (p.path_a, p.path_b) for p in LFWPairs(root).pairs)

    res = evaluate_clean(PooledPixels(), root, CleanOptions(batch_size=8), progress=False)
    f = res.figures
    assert f.n_pairs + res.n_pairs_excluded == 24
    assert res.n_pairs_excluded == n_with_blank >= 1
    assert res.skipped == [{"path": str(blank_pair.path_a), "reason": "no face detected"}]
    assert f.model == "pooled-pixels" and res.pairs_file == "pairs.txt"
    assert f.protocol == "k-fold"
    assert 0.0 <= f.accuracy <= 1.0 and 0.0 <= f.auc <= 1.0 and res.seconds > 0
    assert f.correct.n == f.n_pairs and f.tar_at_far.n == f.n_same
    doc = json.loads(json.dumps(res.to_dict()))
    assert CleanEvaluation.from_dict(doc) == res
    for key in ("accuracy", "accuracy_std", "auc", "eer", "tar_at_far", "far",
                "threshold_at_far", "n_pairs", "model", "correct"):
        assert key in doc["figures"]


@pytest.mark.data
def test_evaluate_clean_limit_pairs_on_lfw(lfw_root: Path, cache: Path) -> None:
    res = evaluate_clean(PooledPixels(), lfw_root, CleanOptions(limit_pairs=20), progress=False)
    assert res.figures.n_pairs + res.n_pairs_excluded == 20
    assert res.n_images <= 40
    again = evaluate_clean(PooledPixels(), lfw_root, CleanOptions(limit_pairs=20), progress=False)
    assert again.figures.accuracy == res.figures.accuracy  # deterministic, cached
    assert again.figures.auc == res.figures.auc


@pytest.mark.data
@pytest.mark.slow
def test_dlib_resnet_clean_accuracy_on_40_lfw_pairs(lfw_root: Path, cache: Path) -> None:
    from facerobust import models

    res = evaluate_clean(models.load("dlib-resnet"), lfw_root, CleanOptions(limit_pairs=40),
                         progress=False)
    f = res.figures
    assert f.model == "dlib-resnet" and f.operating_threshold == 0.6
    assert f.n_pairs >= 36
    assert f.accuracy >= 0.9 and f.auc >= 0.95
    assert f.correct_at_operating_threshold.rate >= 0.9


@pytest.mark.parametrize(("changes", "message"), [
    ({"limit_pairs": 0}, "limit_pairs must be an integer >= 1 or None"),
    ({"layout": "flat"}, "layout must be one of auto, lfw, cfp, folders, listing"),
    ({"detector": "mtcnn"}, "unknown detector 'mtcnn'"),
    ({"far": 1.0}, r"far must be in \(0, 1\)"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"pairs_file": ""}, "pairs_file is empty"),
])
def test_clean_options_name_the_bad_field(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CleanOptions(**changes)
