from __future__ import annotations

import pytest
import torch

from facerobust.defenses.training import (
    adversarial_finetune,
    augment_batch,
    evaluate_robustness,
)


def _identities(ids: int = 12, per: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    tmpl = torch.nn.functional.avg_pool2d(torch.rand((ids, 3, 32, 32), generator=g), 5, 1, 2)
    noise = 0.05 * torch.randn((ids * per, 3, 32, 32), generator=g)
    labels = torch.arange(ids).repeat_interleave(per)
    return (tmpl.repeat_interleave(per, 0) + noise).clamp(0, 1), labels


def _pretrained(make_tiny, x: torch.Tensor, y: torch.Tensor):  # type: ignore[no-untyped-def]
    """Clean contrastive pre-training so that the threshold 0.6 separates identities."""
    model = make_tiny(seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    same = y[:, None] == y[None, :]
    for _ in range(40):
        d = torch.cdist(model(x), model(x))
        loss = torch.relu(d[same] - 0.4).mean() + torch.relu(0.8 - d[~same]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.mark.slow
def test_adversarial_finetuning_reduces_attack_success_on_unseen_identities(make_tiny) -> None:
    chips, labels = _identities()
    train = labels < 8
    model = _pretrained(make_tiny, chips[train], labels[train])
    holdout = (chips[~train], labels[~train])
    tuned, report = adversarial_finetune(model, chips[train], labels[train], epochs=3,
                                         eps=2 / 255, steps=3, layers="all", lr=1e-3,
                                         holdout=holdout)
    assert report.before is not None and report.after is not None
    assert report.before.clean_accuracy >= 0.9 and report.before.attack_success > 0.5
    assert report.after.attack_success < report.before.attack_success
    assert report.after.clean_accuracy >= 0.75
    assert report.robustness_gain is not None and report.robustness_gain > 0
    assert report.steps_done == 3 * 3 and len(report.loss_history) == 3
    # the original model is untouched, the tuned one differs
    again = evaluate_robustness(model, *holdout, eps=2 / 255, steps=5)
    assert again == report.before
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), tuned.parameters(),
                                                     strict=True))
    assert report.to_dict()["robustness_gain"] == report.robustness_gain


def test_last_layers_only_and_time_budget(make_tiny) -> None:
    chips, labels = _identities(ids=4, per=4)
    model = make_tiny(seed=1).eval()
    tuned, report = adversarial_finetune(model, chips, labels, epochs=5, eps=2 / 255, steps=1,
                                         layers=1, batch_size=8, max_seconds=0.0, augment=False,
                                         goal="impersonation")
    assert report.stopped_early and report.steps_done == 1
    assert report.trainable_parameters == 16 * 8 * 8 * 16 + 16   # the final Linear only
    frozen = [torch.equal(a, b) for a, b in zip(model.parameters(), tuned.parameters(),
                                                strict=True)]
    assert frozen == [True, True, True, True, False, False]


def test_augment_keeps_shape_and_range() -> None:
    x = torch.rand((4, 3, 32, 32))
    y = augment_batch(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    assert not torch.equal(x, y)


def test_finetune_validation(make_tiny) -> None:
    chips, labels = _identities(ids=3, per=2)
    model = make_tiny()
    with pytest.raises(ValueError, match="holdout shares identities"):
        adversarial_finetune(model, chips, labels, holdout=(chips[:2], labels[:2]))
    with pytest.raises(ValueError, match="layers must be"):
        adversarial_finetune(model, chips, labels, layers="first")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 2 identities"):
        adversarial_finetune(model, chips[:2], labels[:2])
    with pytest.raises(ValueError, match="goal must be"):
        adversarial_finetune(model, chips, labels, goal="dodge")  # type: ignore[arg-type]
