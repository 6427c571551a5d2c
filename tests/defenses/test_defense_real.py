"""The defense evaluation on the real dlib model and LFW (small sample)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facerobust.attacks import PGD


@pytest.mark.data
@pytest.mark.slow
def test_jpeg_on_dlib_is_broken_by_bpda_and_flagged(lfw_root: Path) -> None:
    from facerobust import models
    from facerobust.data.chips import load_chips
    from facerobust.data.lfw import LFWPairs
    from facerobust.defenses import parse_defense
    from facerobust.eval.defense_eval import DefenseEvalOptions, evaluate_defense

    pairs = LFWPairs(lfw_root).pairs
    chosen = [p for p in pairs if p.same][:4] + [p for p in pairs if not p.same][:4]
    chips = load_chips(sorted({p.path_a for p in chosen} | {p.path_b for p in chosen}))
    kept = [p for p in chosen if p.path_a in chips.index and p.path_b in chips.index]
    x1 = chips.chips[[chips.index[p.path_a] for p in kept]]
    x2 = chips.chips[[chips.index[p.path_b] for p in kept]]
    same = torch.tensor([p.same for p in kept])
    model = models.load("dlib-resnet")
    r = evaluate_defense(model, parse_defense("jpeg:q=75"), x1, x2, same, PGD(steps=5),
                         DefenseEvalOptions(epsilons=[4 / 255], goal="dodging"))
    assert r.n_attacked >= 2 and r.clean.rate >= 0.75
    assert r.undefended[0].rate >= 0.5
    assert r.adaptive[0].k >= r.naive[0].k and r.adaptive[0].rate >= 0.5
    assert r.direct is not None and r.direct[0].k <= r.adaptive[0].k
    assert r.masking["zero_gradients"]
