"""Defensive distillation for identification heads (Papernot et al., S&P 2016), and the
attacks known to defeat it (Carlini & Wagner, 2016/2017).

A teacher head is trained at temperature ``T`` (softmax of ``logits / T``); a student head
of the same shape is trained on the teacher's soft labels at the same ``T`` and deployed at
``T = 1``. Its logits are then ~``T`` times larger, the softmax saturates, and the gradient of
the cross-entropy vanishes in float32: *naive* PGD (cross-entropy through the softmax)
stalls, which looks like robustness. Attacks on the pre-softmax logits -- PGD maximising the
logit margin, and Carlini-Wagner L2 on the logits -- do not care, and are expected to win.

>>> teacher, student = distill_head(emb, labels, n_classes=20, temperature=50)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facerobust.attacks.criteria import Misclassification
from facerobust.attacks.cw import CWOptions
from facerobust.attacks.registry import build_attack
from facerobust.attacks.threat import L2, LINF
from facerobust.core.stats import Rate
from facerobust.models.heads import make_head


@dataclass(frozen=True)
class LogitMarginMisclassification(Misclassification):
    """Untargeted identification whose attack loss is the logit margin (largest other logit
    minus the true one), not the cross-entropy: PGD on the pre-softmax logits."""

    def loss(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.margin(outputs)


def _fit(head: nn.Module, x: torch.Tensor, target: torch.Tensor, temperature: float,
         epochs: int, lr: float) -> nn.Module:
    """Full-batch Adam on cross-entropy of ``softmax(head(x) / T)`` against ``target``
    (class indices or a probability matrix)."""
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(epochs):
        opt.zero_grad()
        F.cross_entropy(head(x) / temperature, target).backward()
        opt.step()
    return head.eval()


def distill_head(train_emb: torch.Tensor, train_labels: torch.Tensor, *, n_classes: int,
                 temperature: float = 100.0, epochs: int = 1000, lr: float = 0.05,
                 seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """(teacher, distilled student) linear heads; the student is deployed at T = 1."""
    if not temperature >= 1:
        raise ValueError(f"temperature must be >= 1, got {temperature!r}")
    if train_emb.ndim != 2 or len(train_emb) != len(train_labels):
        raise ValueError(f"need (M, D) embeddings and M labels, got {tuple(train_emb.shape)} "
                         f"and {tuple(train_labels.shape)}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    x, y = train_emb.detach().float(), train_labels.long()
    torch.manual_seed(seed)
    teacher = _fit(make_head("linear", x.shape[1], n_classes), x, y, temperature, epochs, lr)
    with torch.no_grad():
        soft = F.softmax(teacher(x) / temperature, dim=1)
    torch.manual_seed(seed + 1)
    student = _fit(make_head("linear", x.shape[1], n_classes), x, soft, temperature, epochs,
                   lr)
    return teacher, student


def attack_rates(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, *, eps: float,
                 steps: int, cw_l2: float, cw_steps: int, seed: int = 0) -> dict[str, Any]:
    """Untargeted success of naive PGD (cross-entropy), PGD on the logit margin and CW-L2 on
    the logits, on probes ``x`` that ``model`` classifies correctly."""

    with torch.no_grad():
        logits = model(x)
    ok = logits.argmax(1) == labels
    x, labels = x[ok], labels[ok]
    out: dict[str, Any] = {"n_correct": int(ok.sum()), "n_probes": len(ok),
                           "mean_top_logit_gap": _gap(logits[ok], labels),
                           "zero_gradient": zero_gradient(model, x, labels)}
    if not len(x):
        return out
    g = torch.Generator().manual_seed(seed)
    pgd = build_attack("pgd", LINF, steps=steps)
    out["naive_pgd"] = Rate.of(pgd(model, x, Misclassification(labels), epsilons=[eps],
                                   generator=g).success[0])
    out["logit_pgd"] = Rate.of(pgd(model, x, LogitMarginMisclassification(labels),
                                   epsilons=[eps], generator=g).success[0])
    cw = build_attack("cw", L2, CWOptions(steps=cw_steps, binary_search_steps=3,
                                          initial_const=1.0))
    res = cw(model, x, Misclassification(labels), epsilons=[cw_l2, float("inf")])
    out["cw_l2_logits"] = Rate.of(res.success[0])
    out["cw_l2_unbounded"] = Rate.of(res.success[1])
    return out


def _gap(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean (true logit - largest other logit): how saturated the softmax is."""
    if not len(logits):
        return 0.0
    return float(-Misclassification(labels).margin(logits).mean())


def zero_gradient(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> Rate:
    """Probes whose cross-entropy gradient w.r.t. the input is exactly zero in float32 (the
    saturated softmax that stalls naive gradient attacks)."""
    if not len(x):
        return Rate(0, 0)
    xg = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(xg), labels.long(), reduction="sum")
        (grad,) = torch.autograd.grad(loss, xg)
    return Rate.of(grad.flatten(1).abs().amax(1) == 0)
