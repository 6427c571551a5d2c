"""Retraining with augmentation + adversarials: augmentation spec, mixing, validation
checkpoint, and the (a)-(d) judging."""

from __future__ import annotations

import pytest
import torch

from facerobust.defenses.augment import AugmentSpec
from facerobust.defenses.hardening import CONDITIONS, HardeningOptions, hardening_evaluation
from facerobust.defenses.training import adversarial_finetune
from tests.defenses.test_defense_training import _identities, _pretrained


def test_augment_spec_parse_seeded_and_partial() -> None:
    spec = AugmentSpec.parse("rotation=15, zoom=0.2, flip=0, brightness=0.3, contrast=0.2")
    assert (spec.rotation, spec.zoom, spec.flip, spec.brightness) == (15.0, 0.2, False, 0.3)
    x = torch.rand((6, 3, 32, 32))
    a = spec.apply(x, torch.Generator().manual_seed(3))
    b = spec.apply(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, x)  # seeded, and it changes the images
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    half = AugmentSpec(fraction=0.5).apply(x, torch.Generator().manual_seed(0))
    same = [torch.equal(half[i], x[i]) for i in range(6)]
    assert any(same) and not all(same)
    assert torch.equal(AugmentSpec.parse("none").apply(x), x)
    with pytest.raises(ValueError, match="augmentation zoom must be a number in"):
        AugmentSpec(zoom=0.9)
    with pytest.raises(ValueError, match="use key=value with keys"):
        AugmentSpec.parse("spin=3")
    with pytest.raises(ValueError, match="is not a number"):
        AugmentSpec.parse("rotation=lots")


def test_brightness_and_contrast_move_pixels() -> None:
    x = torch.full((8, 3, 16, 16), 0.5)
    x[:, :, :8] = 0.3
    y = AugmentSpec(rotation=0, zoom=0, flip=False, brightness=0.3, contrast=0.5).apply(
        x, torch.Generator().manual_seed(0))
    means = y.mean(dim=(1, 2, 3))
    spreads = y.amax(dim=(1, 2, 3)) - y.amin(dim=(1, 2, 3))
    assert float(means.std()) > 0.02 and float(spreads.std()) > 0.01


def test_validation_keeps_best_epoch_and_mixing(make_tiny) -> None:  # type: ignore[no-untyped-def]
    chips, labels = _identities(ids=12, per=4)
    model = _pretrained(make_tiny, chips[labels < 6], labels[labels < 6])
    val = (chips[(labels >= 6) & (labels < 9)], labels[(labels >= 6) & (labels < 9)])
    tuned, report = adversarial_finetune(
        model, chips[labels < 6], labels[labels < 6], epochs=3, eps=2 / 255, steps=2,
        layers="all", lr=1e-3, augment=AugmentSpec(brightness=0.1, fraction=0.5),
        adv_fraction=0.5, validation=val, seed=0)
    assert len(report.val_history) == 4  # the untouched model, then every epoch
    scores = [h["score"] for h in report.val_history]
    assert report.best_epoch is not None
    assert scores[report.best_epoch + 1] == max(scores)
    assert report.adv_fraction == 0.5 and report.augmentation is not None
    with pytest.raises(ValueError, match="validation shares identities"):
        adversarial_finetune(model, chips[labels < 6], labels[labels < 6],
                             validation=(chips[:4], labels[:4]))
    with pytest.raises(ValueError, match="adv_fraction must be in"):
        adversarial_finetune(model, chips[labels < 6], labels[labels < 6], adv_fraction=2.0)


def test_hardening_evaluation_reports_every_condition(make_tiny) -> None:  # type: ignore[no-untyped-def]
    chips, labels = _identities(ids=8, per=4)
    model = _pretrained(make_tiny, chips, labels)
    options = HardeningOptions(eps=4 / 255, steps=2, cw_steps=5, adaptive_steps=4, restarts=2,
                               seed=0)
    rows = hardening_evaluation(model, chips, labels, options)
    assert tuple(rows) == CONDITIONS
    assert rows["a_clean"].n == 2 * 8 * 3  # 24 genuine + 24 impostor pairs
    assert rows["a_genuine_accept"].n == rows["a_impostor_reject"].n == 24
    assert rows["a_genuine_accept"].k + rows["a_impostor_reject"].k == rows["a_clean"].k
    attacked = [rows[k] for k in ("b_trained_attack", "c_larger_budget", "c_adaptive_pgd")]
    assert all(r.n == attacked[0].n > 0 for r in attacked)
    # a larger budget and a stronger attack never do worse than the trained attack
    assert rows["c_larger_budget"].k >= rows["b_trained_attack"].k
    assert rows["c_adaptive_pgd"].k >= rows["b_trained_attack"].k


@pytest.mark.parametrize(("changes", "message"), [
    ({"eps": 0.0}, "eps must be > 0"),
    ({"steps": 0}, "steps must be an integer >= 1"),
    ({"restarts": 1.5}, "restarts must be an integer >= 1"),
    ({"cw_l2": -1.0}, "cw_l2 must be > 0"),
    ({"seed": "0"}, "seed must be an integer"),
])
def test_hardening_options_name_the_bad_field(changes: dict, message: str) -> None:
    settings = {"eps": 2 / 255, "steps": 3, **changes}
    with pytest.raises(ValueError, match=message):
        HardeningOptions(**settings)
