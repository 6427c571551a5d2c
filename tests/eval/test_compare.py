"""compare: thresholds from training folds, distance statistics, FGSM error rates, CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from facerobust import models
from facerobust.attacks import LINF, Dodging, Impersonation
from facerobust.attacks.registry import build_attack
from facerobust.cli import main
from facerobust.eval.compare import Comparison, compare_models, fgsm_errors, fold_thresholds
from facerobust.eval.results_study import load_comparison
from tests.helpers.models import PooledPixels
from tests.helpers.synthetic_lfw import synthetic_lfw  # noqa: F401 (fixture)


def test_fold_thresholds_use_only_the_other_folds() -> None:
    d = np.array([0.1, 0.9, 0.2, 0.8, 0.5, 0.6])
    same = np.array([True, False, True, False, True, False])
    folds = np.array([0, 0, 1, 1, 2, 2])
    thr = fold_thresholds(d, same, folds)
    assert set(thr) == {0, 1, 2}
    # fold 2's own pairs (0.5 / 0.6) never set its threshold: folds 0, 1 split at 0.5
    assert thr[2] == pytest.approx(0.5)
    assert thr[0] == pytest.approx(0.55)  # folds 1, 2: midpoint of 0.5 and 0.6
    single = fold_thresholds(d, same, np.zeros(6, dtype=int))
    assert single[0] == pytest.approx(0.55)


def test_compare_models_figures(synthetic_lfw: Path, tmp_path: Path) -> None:  # noqa: F811
    weak = PooledPixels(pool=2)
    res = compare_models({"pooled8": PooledPixels(), "pooled2": weak}, synthetic_lfw,
                         limit_pairs=None, n_attack=10, epsilons=[8 / 255, 1 / 255, 0.05],
                         progress=False)
    assert isinstance(res, Comparison) and res.n_pairs == 24 and res.n_attacked == 10
    first = res.models[0]
    assert first.model == "pooled8" and first.metric == "euclidean"
    assert [p.eps for p in first.fgsm] == sorted([8 / 255, 1 / 255, 0.05])
    assert first.genuine_mean < first.impostor_mean and first.accuracy > 0.9
    assert len(first.fold_thresholds) == 2 and first.correct.n == 24
    for m in res.models:  # error never decreases with a larger budget (one FGSM gradient)
        ks = [m.clean_error.k] + [p.error.k for p in m.fgsm]
        assert ks == sorted(ks) and all(p.error.n == 10 for p in m.fgsm)
    assert first.fgsm[-1].error.k > first.clean_error.k  # FGSM at 0.05 fools the toy model
    again = Comparison.from_dict(json.loads(json.dumps(res.to_dict())))
    assert again == res


def test_compare_cli_writes_table_json_and_figure(synthetic_lfw: Path, tmp_path: Path,  # noqa: F811
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(models, "load", lambda name, device=None: PooledPixels())
    out = tmp_path / "cmp"
    argv = ["compare", "--models", "a,b", "--data", str(synthetic_lfw), "--limit-pairs", "0",
            "--attack-pairs", "6", "--eps", "0.01,2/255", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "FGSM error rate" in text and "/6, 95% CI" in text
    doc = json.loads((out / "results.json").read_text())
    assert doc["kind"] == "comparison" and [m["model"] for m in doc["models"]] == ["a", "b"]
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    html = (out / "report.html").read_text()  # rendered from results.json
    loaded = load_comparison(out / "results.json")
    assert all(p.error.text() in html for m in loaded.models for p in m.fgsm)
    assert "data:image/png;base64," in html
    assert main(argv) == 0  # the finished run is reused, not recomputed ...
    assert "reused the finished comparison run" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0  # ... and --force does not recompute it either
    again = load_comparison(out / "results.json")  # the same figures again (not timings)
    assert [replace(m, seconds=0) for m in again.models] == \
        [replace(m, seconds=0) for m in loaded.models]
    assert main(["compare", "--models", "a,a", "--out", str(tmp_path / "x")]) == 2


def test_fgsm_errors_judge_each_pair_at_its_own_threshold() -> None:
    """Batched with per-row thresholds (few batch shapes), the flags equal FGSM run pair by
    pair at each pair's own threshold."""
    model = PooledPixels().eval()
    gen = torch.Generator().manual_seed(0)
    xa = torch.rand(11, 3, 150, 150, generator=gen)
    with torch.no_grad():
        ref = model(torch.rand(11, 3, 150, 150, generator=gen))
        d = model.distance(model(xa), ref)
    same = np.array([True, False] * 5 + [True])
    thresholds = d.numpy().astype(np.float64) * np.where(np.arange(11) % 3 == 0, 1.05, 0.97)
    eps = [1 / 255, 8 / 255]
    sizes: list[int] = []
    hook = model.register_forward_pre_hook(lambda _m, args: sizes.append(len(args[0])))
    clean, after = fgsm_errors(model, xa, ref, same, thresholds, eps, batch_size=4)
    hook.remove()
    # full batches, not one batch per threshold (each new shape costs oneDNN memory)
    # (6 genuine: 4 + 2; 5 impostor: 4 + 1; FGSM's own success forward may take fewer rows)
    assert max(sizes) == 4 and sizes.count(4) >= 2
    for i in range(11):
        kind = Dodging if same[i] else Impersonation
        crit = kind(ref[i:i + 1], float(thresholds[i]), model.metric)
        with torch.no_grad():
            assert clean[i] == bool(crit.is_adversarial(model(xa[i:i + 1]))[0])
        res = build_attack("fgsm", LINF)(model, xa[i:i + 1], crit, epsilons=eps)
        assert after[:, i].tolist() == res.success[:, 0].tolist()
    assert clean.any() and not clean.all()  # both sides of the thresholds are exercised
