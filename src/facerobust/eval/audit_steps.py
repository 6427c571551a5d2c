"""The units of work of an audit. Each returns a JSON-serialisable dict (stored as-is)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facerobust.eval.audit_data import IdentitySplit, PairSample, spread
from facerobust.eval.config import AuditConfig
from facerobust.eval.store import RunStore


@dataclass
class Context:
    cfg: AuditConfig
    store: RunStore
    out: Path
    root: Path
    chips: Any  # facerobust.data.chips.ChipSet
    pairs: PairSample
    dropped_pairs: int
    split: IdentitySplit | None
    models: dict[str, nn.Module]
    missing_models: dict[str, str]
    progress: bool = True
    _emb: dict[str, torch.Tensor] = field(default_factory=dict)
    _heads: dict[str, nn.Module] = field(default_factory=dict)


def model_details(model: nn.Module) -> dict[str, Any]:
    return {"name": getattr(model, "name", type(model).__name__),
            "metric": getattr(model, "metric", None),
            "threshold": float(getattr(model, "threshold", float("nan"))),
            "embedding_dim": getattr(model, "embedding_dim", None)}


@torch.no_grad()
def forward_batched(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def embeddings(ctx: Context, name: str) -> torch.Tensor:
    """Raw descriptors of every chip under model ``name`` (cached in the run store)."""
    if name not in ctx._emb:
        key = f"emb-{name}"
        if ctx.store.has_tensors(key):
            ctx._emb[name] = ctx.store.load_tensors(key)["emb"]
        else:
            emb = forward_batched(ctx.models[name], ctx.chips.chips, ctx.cfg.run.batch_size)
            ctx.store.save_tensors(key, {"emb": emb})
            ctx._emb[name] = emb
    return ctx._emb[name]


def _distances(model: nn.Module, emb: torch.Tensor, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return model.distance(emb[torch.as_tensor(a)], emb[torch.as_tensor(b)]).numpy()


def identification_model(ctx: Context, name: str) -> nn.Module:
    """The closed-set classifier (model ``name`` + head trained on the enrolment images)."""
    from facerobust.models.heads import IdentificationModel, make_head, train_head

    if name not in ctx._heads:
        if ctx.split is None:
            raise ValueError("identification is not enabled in the config")
        key = f"head-{name}"
        emb = embeddings(ctx, name)
        rows = [ctx.chips.index[p] for p in ctx.split.train_paths if p in ctx.chips.index]
        labels = [lab for p, lab in zip(ctx.split.train_paths, ctx.split.train_labels,
                                        strict=True) if p in ctx.chips.index]
        model = ctx.models[name]
        if ctx.store.has_tensors(key):
            head = make_head("cosine", emb.shape[1], len(ctx.split.names))
            head.load_state_dict(ctx.store.load_tensors(key))
        else:
            head = train_head(emb[rows], torch.as_tensor(labels),
                              n_classes=len(ctx.split.names), seed=ctx.cfg.run.seed)
            ctx.store.save_tensors(key, head.state_dict())
        head.eval()
        ident = IdentificationModel(model, head, names=ctx.split.names).eval()
        ident.requires_grad_(False)
        ctx._heads[name] = ident
    return ctx._heads[name]


def _probe_rows(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    if ctx.split is None:
        raise ValueError("identification is not enabled in the config")
    keep = [(ctx.chips.index[p], lab) for p, lab in zip(ctx.split.probe_paths,
                                                       ctx.split.probe_labels, strict=True)
            if p in ctx.chips.index]
    return (np.array([k for k, _ in keep], dtype=np.int64),
            np.array([lab for _, lab in keep], dtype=np.int64))


def clean_unit(ctx: Context, name: str) -> dict[str, Any]:
    from facerobust.eval.metrics import verification_metrics

    model, emb, pairs = ctx.models[name], embeddings(ctx, name), ctx.pairs
    dist = _distances(model, emb, pairs.a, pairs.b)
    metrics = verification_metrics(dist, pairs.same, pairs.fold, far=1e-3)
    out = metrics.to_dict()
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(pairs.same.astype(int), -dist)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), 300)).round().astype(int))
    out["roc"] = {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist()}
    accept = dist <= model.threshold
    out["operating_threshold"] = float(model.threshold)
    out["genuine_accept_rate"] = float(accept[pairs.same].mean())
    out["impostor_reject_rate"] = float((~accept[~pairs.same]).mean())
    out["accuracy_at_operating_threshold"] = float((accept == pairs.same).mean())
    out["identification_top1"] = None
    if ctx.split is not None:
        rows, labels = _probe_rows(ctx)
        ident = identification_model(ctx, name)
        logits = ident.head(emb[torch.as_tensor(rows)])
        out["identification_top1"] = float((logits.argmax(1).numpy() == labels).mean())
        out["identification_probes"] = len(rows)
    return out


def _verification_sample(ctx: Context, goal: str, n: int) -> np.ndarray:
    """Pair rows for ``goal`` that the victim decides correctly (genuine accepted for dodging,
    impostor rejected for impersonation), spread over the folds."""
    victim = ctx.models[ctx.cfg.models.victim]
    dist = _distances(victim, embeddings(ctx, ctx.cfg.models.victim), ctx.pairs.a, ctx.pairs.b)
    if goal == "dodging":
        ok = ctx.pairs.same & (dist <= victim.threshold)
    else:
        ok = ~ctx.pairs.same & (dist > victim.threshold)
    return spread(np.flatnonzero(ok), n)


def _criterion(goal: str, model: nn.Module, reference: torch.Tensor) -> Any:
    from facerobust.attacks import (
        Dodging,
        Impersonation,
        Misclassification,
        TargetedMisclassification,
    )

    if goal == "dodging":
        return Dodging(reference, threshold=float(model.threshold), metric=model.metric)
    if goal == "impersonation":
        return Impersonation(reference, threshold=float(model.threshold), metric=model.metric)
    if goal == "untargeted":
        return Misclassification(reference)
    return TargetedMisclassification(reference)


def make_attack(name: str, *, norm: str, steps: int, queries: int) -> Any:
    """Map a config attack name to a configured facerobust attack."""
    from facerobust import attacks as A

    if name == "fgsm":
        return A.FGSM() if norm == "linf" else A.FGM()
    if name == "bim":
        return A.BIM(norm=norm, steps=steps)
    if name == "pgd":
        return A.PGD(norm=norm, steps=steps)
    if name == "mifgsm":
        return A.MIFGSM(norm=norm, steps=steps)
    if name == "cw":
        return A.CarliniWagnerL2(steps=steps, binary_search_steps=5)
    if name == "deepfool":
        return A.DeepFool(norm=norm, steps=steps)
    if name == "square":
        return A.SquareAttack(norm=norm, max_queries=queries)
    if name == "hsj":
        return A.HopSkipJump(norm=norm, max_queries=queries)
    raise ValueError(f"unknown attack {name!r}")
