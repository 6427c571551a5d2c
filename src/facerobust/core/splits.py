"""Identity splits: which people enrol and which probe (closed-set identification), and
genuine / impostor index pairs of a labelled chip set (threshold calibration, hardening)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


def choose_identities(people: dict[str, list[Path]], *, count: int, min_images: int,
                      seed: int) -> list[str]:
    """``count`` identities with >= ``min_images`` images, drawn at random (seeded), in draw
    order (fewer when fewer qualify; raises when fewer than 2 do)."""
    eligible = sorted(name for name, files in people.items() if len(files) >= min_images)
    if len(eligible) < 2:
        raise ValueError(f"need >= 2 identities with >= {min_images} images; the dataset has "
                         f"{len(eligible)}")
    rng = np.random.default_rng(seed)
    return [str(n) for n in rng.choice(eligible, size=min(count, len(eligible)), replace=False)]


@dataclass(frozen=True)
class IdentitySplit:
    """Closed-set identification split: enrolment (head training / gallery) and probe images;
    label ``i`` is ``names[i]``."""

    names: list[str]
    train_paths: list[Path]
    train_labels: list[int]
    probe_paths: list[Path]
    probe_labels: list[int]

    def to_dict(self, root: Path) -> dict[str, Any]:
        """JSON form with paths relative to the dataset ``root`` (portable across machines;
        paths of another dataset stay absolute, and :meth:`from_dict` keeps them so)."""
        def rel(paths: list[Path]) -> list[str]:  # outside root (a fitting dataset): absolute
            return [Path(p).relative_to(root).as_posix() if Path(p).is_relative_to(root)
                    else Path(p).as_posix() for p in paths]

        return {"names": self.names, "train": rel(self.train_paths),
                "train_labels": self.train_labels, "probe": rel(self.probe_paths),
                "probe_labels": self.probe_labels}

    @classmethod
    def from_dict(cls, data: dict[str, Any], root: Path) -> IdentitySplit:
        """Read back :meth:`to_dict` (paths joined to ``root``)."""
        try:
            return cls(list(data["names"]), [root / p for p in data["train"]],
                       [int(v) for v in data["train_labels"]],
                       [root / p for p in data["probe"]], [int(v) for v in data["probe_labels"]])
        except (KeyError, TypeError) as err:
            raise ValueError(f"identification split is missing or malformed: {err}") from err


def identity_split(people: dict[str, list[Path]], *, identities: int, images: int,
                   gallery: int, min_images: int, seed: int) -> IdentitySplit:
    """Up to ``identities`` people (seeded draw) with >= ``max(min_images, gallery + 1)``
    images; of each person's first ``images`` files (sorted), ``gallery`` enrol and the rest
    probe. The one identification split of every command."""
    if not 1 <= gallery < images:
        raise ValueError(f"gallery_per_identity must be >= 1 and smaller than "
                         f"images_per_identity, got {gallery} and {images}")
    need = max(min_images, gallery + 1)
    chosen = sorted(choose_identities(people, count=identities, min_images=need, seed=seed))
    split = IdentitySplit(chosen, [], [], [], [])
    for label, name in enumerate(chosen):
        files = sorted(people[name])[:images]
        split.train_paths.extend(files[:gallery])
        split.train_labels.extend([label] * gallery)
        split.probe_paths.extend(files[gallery:])
        split.probe_labels.extend([label] * len(files[gallery:]))
    return split


def label_pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Genuine pairs (consecutive images of one identity) and as many impostor pairs:
    index tensors ``a``, ``b`` and the mask ``same``."""
    gen: list[tuple[int, int]] = []
    for lab in labels.unique().tolist():
        rows = (labels == lab).nonzero()[:, 0].tolist()
        gen += list(zip(rows[:-1], rows[1:], strict=True))
    order = torch.argsort(labels, stable=True).tolist()
    shift = max(1, len(order) // 2)
    imp = [(order[i], order[(i + shift) % len(order)]) for i in range(len(order))]
    imp = [(a, b) for a, b in imp if labels[a] != labels[b]][: max(1, len(gen))]
    a = torch.tensor([p[0] for p in gen + imp])
    b = torch.tensor([p[1] for p in gen + imp])
    return a, b, torch.arange(len(a)) < len(gen)
