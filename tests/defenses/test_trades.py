from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facerobust.defenses.trades import TradesTerms, embedding_pgd, trades_loss
from facerobust.defenses.training import (
    FinetuneOptions,
    adversarial_finetune,
    genuine_hinge,
    impostor_hinge,
    person_run_order,
)


def _chips(n: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.avg_pool2d(torch.rand((n, 3, 32, 32), generator=g), 3, 1, 1)
    return x, torch.arange(n) % 4


def _drift(model: torch.nn.Module, x: torch.Tensor, eps: float) -> float:
    """Mean descriptor move under embedding_pgd at ``eps`` (a fixed seed)."""
    adv = embedding_pgd(model, x, eps=eps, steps=5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return float((model(adv) - model(x)).norm(dim=1).mean())


def test_embedding_pgd_stays_in_the_ball_and_moves_the_descriptor(make_tiny) -> None:
    model, (x, _) = make_tiny(seed=0).eval(), _chips()
    adv = embedding_pgd(model, x, eps=4 / 255, steps=3, generator=torch.Generator().manual_seed(0))
    assert float((adv - x).abs().max()) <= 4 / 255 + 1e-6
    assert float(adv.min()) >= 0 and float(adv.max()) <= 1
    noise = (x + (torch.rand(x.shape) * 2 - 1) * 4 / 255).clamp(0, 1)
    with torch.no_grad():
        moved = (model(adv) - model(x)).norm(dim=1)
        random = (model(noise) - model(x)).norm(dim=1)
    assert bool((moved > random).all())
    assert all(p.requires_grad for p in model.parameters())  # flags restored


def test_trades_loss_terms_and_errors() -> None:
    teacher = torch.zeros(4, 3)
    clean = torch.ones(4, 3)
    adv = torch.full((2, 3), 3.0)
    rows = torch.tensor([0, 2])
    # anchor: |1|^2 * 3 / 0.25; robust to clean: |2|^2 * 3 / 0.25; to teacher: |3|^2 * 3 / 0.25
    assert float(trades_loss(clean, adv, teacher, TradesTerms(0.5, keep=1.0, beta=0.0),
                             rows)) == 12.0
    assert float(trades_loss(clean, adv, teacher, TradesTerms(0.5, keep=0.0, beta=1.0),
                             rows)) == 48.0
    assert float(trades_loss(clean, adv, teacher, TradesTerms(
        0.5, keep=0.0, beta=1.0, target="teacher"), rows)) == 108.0
    with pytest.raises(ValueError, match=r"adv \(rows, D\)"):
        trades_loss(clean, adv, teacher, TradesTerms(0.5, keep=1.0, beta=1.0))
    with pytest.raises(ValueError, match="trades_target must be"):
        TradesTerms(0.5, keep=1.0, beta=1.0, target="x")  # type: ignore[arg-type]


def test_trades_finetuning_lowers_drift_and_keeps_clean_descriptors(make_tiny) -> None:
    model, (x, y) = make_tiny(seed=0).eval(), _chips()
    tuned, report = adversarial_finetune(
        model, x, y, FinetuneOptions(loss="trades", epochs=12, eps=8 / 255, steps=2,
                                     layers="all", lr=3e-3, augment=False, beta=6.0,
                                     schedule="cosine", batch_size=12))
    assert report.loss == "trades" and report.steps_done == 12
    assert report.loss_history[-1] < report.loss_history[0]
    assert _drift(tuned, x, 8 / 255) < 0.7 * _drift(model, x, 8 / 255)
    with torch.no_grad():
        scale = float(model(x).norm(dim=1).mean())
        kept = float((tuned(x) - model(x)).norm(dim=1).mean())
    assert kept < 0.5 * scale


def test_options_reject_unknown_loss_and_schedule() -> None:
    with pytest.raises(ValueError, match="loss must be 'hinge' or 'trades'"):
        FinetuneOptions(loss="kl")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="schedule must be"):
        FinetuneOptions(schedule="step")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="beta and keep must be >= 0"):
        FinetuneOptions(beta=-1.0)


def test_checkpoint_resumes_to_the_same_weights(make_tiny, tmp_path: Path) -> None:
    x, y = _chips()
    o = FinetuneOptions(loss="trades", epochs=2, eps=4 / 255, steps=1, layers="all", lr=1e-3,
                        augment=False, batch_size=4, checkpoint_seconds=0.0)
    whole, _ = adversarial_finetune(make_tiny(seed=0).eval(), x, y, o)
    path = tmp_path / "run.ckpt"
    _, first = adversarial_finetune(make_tiny(seed=0).eval(), x, y, o,
                                    checkpoint=str(path), max_seconds=0.0)
    assert first.stopped_early and first.steps_done == 1 and path.is_file()
    resumed, second = adversarial_finetune(make_tiny(seed=0).eval(), x, y, o,
                                           checkpoint=str(path))
    assert second.steps_done == 6 and not second.stopped_early
    for a, b in zip(whole.parameters(), resumed.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="was made with lr=0.001, this run has lr=0.01"):
        adversarial_finetune(make_tiny(seed=0).eval(), x, y, o, checkpoint=str(path), lr=1e-2)


def test_person_runs_give_every_batch_genuine_pairs() -> None:
    labels = torch.arange(40) % 7  # 7 people, 5-6 photos each
    order = person_run_order(labels, 4, torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == list(range(40))  # every row once
    runs, k = [], 0
    while k < len(order):  # consecutive rows of one person form runs of at most 4
        j = k
        while j < len(order) and labels[order[j]] == labels[order[k]]:
            j += 1
        runs.append(j - k)
        k = j
    assert max(runs) <= 4 and sum(r >= 2 for r in runs) >= 7
    assert torch.equal(person_run_order(labels, 1, torch.Generator().manual_seed(3)),
                       torch.randperm(40, generator=torch.Generator().manual_seed(3)))


def test_genuine_hinge_pulls_adversarials_towards_their_partner() -> None:
    clean = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    labels = torch.tensor([0, 0, 1])  # rows 0 and 1 are one person, row 2 has no partner
    terms = TradesTerms(0.5, keep=0.0, beta=0.0)
    g = torch.Generator().manual_seed(0)
    adv = torch.tensor([[2.0, 0.0], [1.0, 0.0], [9.0, 0.0]])
    # row 0's adversarial lies 1.0 from row 1 (hinge 1.0 - 0.45), row 1's at 1.0 from row 0
    value = genuine_hinge(clean, adv, torch.arange(3), labels, terms, 0.1, g)
    assert float(value) == pytest.approx((1.0 - 0.45) / 0.5)
    near = torch.tensor([[0.9, 0.0], [0.2, 0.0]])  # both within 0.45 of their partner
    assert float(genuine_hinge(clean, near, torch.arange(2), labels, terms, 0.1, g)) == 0.0
    assert float(genuine_hinge(clean, adv[2:], torch.tensor([2]), labels, terms, 0.1, g)) == 0


def test_genuine_term_options_are_checked_and_train(make_tiny) -> None:
    with pytest.raises(ValueError, match="genuine must be >= 0 and needs loss='trades'"):
        FinetuneOptions(genuine=1.0)
    with pytest.raises(ValueError, match="impostor must be >= 0 and needs loss='trades'"):
        FinetuneOptions(impostor=1.0)
    with pytest.raises(ValueError, match="photos_per_person must be an int >= 1, got 0"):
        FinetuneOptions(photos_per_person=0)
    model, (x, y) = make_tiny(seed=0).eval(), _chips()
    o = FinetuneOptions(loss="trades", epochs=2, eps=4 / 255, steps=1, layers="all", lr=1e-3,
                        augment=False, batch_size=4, photos_per_person=2)
    _, plain = adversarial_finetune(model, x, y, o)
    _, pulled = adversarial_finetune(model, x, y, o, genuine=5.0)
    assert pulled.steps_done == plain.steps_done == 6
    assert pulled.loss_history[0] > plain.loss_history[0]  # the hinge adds to the same batches


def test_impostor_hinge_pushes_only_close_impostors_apart() -> None:
    clean = torch.tensor([[0.0, 0.0], [0.3, 0.0], [2.0, 0.0]], requires_grad=True)
    labels = torch.tensor([0, 1, 1])
    terms = TradesTerms(0.5, keep=0.0, beta=0.0)
    # impostor pairs: (0, 1) at 0.3, inside 0.55 -> 0.25 / 0.5; (0, 2) at 2.0 -> 0
    value = impostor_hinge(clean, labels, terms, 0.1)
    assert float(value) == pytest.approx(0.25 / 0.5 / 2)
    value.backward()
    assert clean.grad is not None and float(clean.grad[0, 0]) > 0 > float(clean.grad[1, 0])
    assert float(impostor_hinge(clean, torch.zeros(3, dtype=torch.long), terms, 0.1)) == 0
