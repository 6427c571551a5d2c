"""Gaussian augmentation (the training of smoothed models): noise on a seeded share of the
batch, and fine-tuning whose clean teacher sees the batch before the noise."""

from __future__ import annotations

import torch

from facerobust.defenses.augment import AugmentSpec
from facerobust.defenses.training import adversarial_finetune

NOISE_ONLY = "noise=0.25,rotation=0,zoom=0,flip=0"


def test_noise_augmentation_is_seeded_clipped_and_off_by_default() -> None:
    spec = AugmentSpec.parse(NOISE_ONLY)
    assert spec.active and not spec.geometric and spec.noise == 0.25
    x = torch.full((8, 3, 16, 16), 0.5)
    y = spec.apply(x, torch.Generator().manual_seed(0))
    assert torch.equal(y, spec.apply(x, torch.Generator().manual_seed(0)))
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert abs(float((y - x).std()) - 0.25) < 0.03  # little clipping around 0.5
    assert torch.equal(spec.apply_clean(x, torch.Generator()), x)
    plain = AugmentSpec(brightness=0.2)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(plain.apply(x, g1), plain.apply_clean(x, g2))  # noise 0: unchanged


def test_noise_finetuning_brings_noisy_embeddings_to_the_clean_teacher(make_tiny) -> None:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(0)
    chips = torch.nn.functional.avg_pool2d(torch.rand((24, 3, 32, 32), generator=g), 3, 1, 1)
    labels = torch.arange(24) // 4
    model = make_tiny(seed=0).eval()
    noisy = AugmentSpec.parse(NOISE_ONLY).apply(chips, torch.Generator().manual_seed(9))

    def gap(net: torch.nn.Module) -> float:
        with torch.no_grad():
            return float((net(noisy) - model(chips)).norm(dim=1).mean())

    tuned, report = adversarial_finetune(
        model, chips, labels, epochs=20, layers="all", lr=3e-3, adv_fraction=0.0, batch_size=24,
        augment=AugmentSpec.parse(NOISE_ONLY), keep=1000.0, seed=0)
    assert report.augment and gap(tuned) < 0.9 * gap(model)
