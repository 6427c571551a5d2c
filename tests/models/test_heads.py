"""Identification heads: training on embeddings, end-to-end gradients, save/load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facerobust.models.heads import (
    IdentificationModel,
    load_identification,
    read_head_file,
    save_identification,
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


def _saved_head(tmp_path: Path, root: Path) -> Path:
    x, y = _clusters(2, 3, 16, seed=4)
    split = {"names": ["ann", "bob"], "train": ["images/ann/1.jpg", "images/bob/1.jpg"],
             "train_labels": [0, 1], "probe": ["images/ann/2.jpg"], "probe_labels": [0]}
    for rel in ("images/ann/1.jpg", "images/bob/1.jpg", "images/ann/2.jpg"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"jpg")
    path = tmp_path / "head.pt"
    save_identification(path, model_name="mobileface", kind="cosine",
                        head=train_head(x, y, n_classes=2, epochs=5), names=["ann", "bob"],
                        split=split, report={})
    return path


def test_head_file_is_refused_for_another_model_or_identity_set(tmp_path: Path) -> None:
    root = tmp_path / "data"
    saved = read_head_file(_saved_head(tmp_path, root))
    saved.check_compatible(model="mobileface", root=root)  # the same model and data: fine
    assert saved.split(root).probe_paths == [root / "images/ann/2.jpg"]
    with pytest.raises(ValueError, match=r"trained on model 'mobileface', not on the victim "
                                         r"'dlib-resnet'"):
        saved.check_compatible(model="dlib-resnet", root=root)
    (root / "images/bob/1.jpg").unlink()
    with pytest.raises(ValueError, match="trained on another identity set: 1 of"):
        saved.check_compatible(model="mobileface", root=root)


def test_unreadable_or_old_head_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="head file not found"):
        read_head_file(tmp_path / "missing.pt")
    old = tmp_path / "old.pt"
    torch.save({"format": 1}, old)
    with pytest.raises(ValueError, match=r"old.pt: not a facerobust identification head of "
                                         r"format 2 \(found 1\)"):
        read_head_file(old)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="junk.pt: not a readable facerobust head file"):
        read_head_file(junk)


@pytest.mark.slow
def test_save_and_load_roundtrip(tmp_path: Path) -> None:
    x, y = _clusters(3, 4, 128, seed=2)
    head = train_head(x, y, n_classes=3, epochs=20)
    split = {"names": ["ann", "bob", "cy"], "train": ["a.jpg"], "train_labels": [0],
             "probe": ["b.jpg"], "probe_labels": [0]}
    save_identification(tmp_path / "h.pt", model_name="dlib-resnet", kind="cosine", head=head,
                        names=["ann", "bob", "cy"], split=split, report={"probe_top1": 1.0})
    ident = load_identification(tmp_path / "h.pt")
    assert ident.names == ["ann", "bob", "cy"] and ident.split["probe"] == ["b.jpg"]
    with torch.no_grad():
        e = torch.randn(2, 128)
        assert torch.allclose(ident.head(e), head(e))
        assert ident(torch.rand(1, 3, 150, 150)).shape == (1, 3)
