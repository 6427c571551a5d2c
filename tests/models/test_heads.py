"""Identification heads: training on embeddings, end-to-end gradients, save/load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facerobust.models.heads import (
    IdentificationModel,
    load_identification,
    save_identification,
    split_identities,
    train_head,
)


def _clusters(n_classes: int, per: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_classes, dim, generator=g)
    labels = torch.arange(n_classes).repeat_interleave(per)
    return centres[labels] + 0.3 * torch.randn(len(labels), dim, generator=g), labels


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_head_learns_separable_identities_and_generalises(kind: str) -> None:
    x, y = _clusters(8, 5, 16, seed=0)
    head = train_head(x, y, n_classes=8, kind=kind, epochs=200)
    xp, yp = _clusters(8, 5, 16, seed=0)  # same centres, new noise below
    xp = xp + 0.1 * torch.randn(xp.shape, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        assert (head(xp).argmax(1) == yp).float().mean() > 0.95
    untrained = train_head(x, y, n_classes=8, kind=kind, epochs=1)
    with torch.no_grad():
        assert (untrained(xp).argmax(1) == yp).float().mean() < 0.9


def test_identification_model_is_differentiable_end_to_end() -> None:
    embedder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 16))
    x, y = _clusters(4, 3, 16, seed=1)
    ident = IdentificationModel(embedder, train_head(x, y, n_classes=4), names=list("abcd"))
    chips = torch.rand(2, 3, 8, 8, requires_grad=True)
    logits = ident(chips)
    assert logits.shape == (2, 4) and ident.predict(chips).shape == (2,)
    logits[:, 0].sum().backward()
    assert chips.grad is not None and chips.grad.abs().sum() > 0


def test_split_identities_holds_out_probes() -> None:
    people = {f"p{i}": [Path(f"p{i}/{j}.jpg") for j in range(3 + i)] for i in range(6)}
    names, train, probe = split_identities(people, min_images=5, per_identity=2,
                                           max_identities=3, max_probes=2, seed=0)
    assert names == ["p3", "p4", "p5"]  # the most populous eligible people
    assert len(train) == 6 and len(probe) == 6
    assert not {p for p, _ in train} & {p for p, _ in probe}
    with pytest.raises(ValueError):
        split_identities(people, min_images=50, per_identity=2, max_identities=3,
                         max_probes=2, seed=0)


@pytest.mark.slow
def test_save_and_load_roundtrip(tmp_path: Path) -> None:
    x, y = _clusters(3, 4, 128, seed=2)
    head = train_head(x, y, n_classes=3, epochs=20)
    split = {"train": ["a.jpg"], "train_labels": [0], "probe": ["b.jpg"], "probe_labels": [0]}
    save_identification(tmp_path / "h.pt", model_name="dlib-resnet", kind="cosine", head=head,
                        names=["ann", "bob", "cy"], split=split, report={"probe_top1": 1.0})
    ident = load_identification(tmp_path / "h.pt")
    assert ident.names == ["ann", "bob", "cy"] and ident.split["probe"] == ["b.jpg"]
    with torch.no_grad():
        e = torch.randn(2, 128)
        assert torch.allclose(ident.head(e), head(e))
        assert ident(torch.rand(1, 3, 150, 150)).shape == (1, 3)
