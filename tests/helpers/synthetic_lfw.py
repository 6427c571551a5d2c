"""A tiny LFW-layout dataset whose "alignment" is faked: each identity gets a seeded smooth
template, each image a noisy copy (no face detection needed), for pipeline tests."""

from __future__ import annotations

import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from facerobust.data import chips as chips_module
from facerobust.data.chips import ChipSet


def make_lfw(root: Path, *, identities: int = 12, images: int = 4, folds: int = 2,
             per_fold: int = 6) -> Path:
    """``root/images/<P>/<P>_000i.jpg`` (placeholder bytes) and a ``pairs.txt``."""
    names = [f"Person_{i:02d}" for i in range(identities)]
    for name in names:
        for k in range(1, images + 1):
            f = root / "images" / name / f"{name}_{k:04d}.jpg"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(b"not decoded: load_chips is faked")
    lines = [f"{folds} {per_fold}"]
    for fold in range(folds):
        for j in range(per_fold):
            name = names[(fold * per_fold + j) % identities]
            lines.append(f"{name} 1 {2 + j % (images - 1)}")
        for j in range(per_fold):
            a, b = names[(fold + j) % identities], names[(fold + j + 5) % identities]
            lines.append(f"{a} {1 + j % images} {b} {1 + (j + 1) % images}")
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return root


def fake_chip(path: Path) -> torch.Tensor:
    ident = zlib.crc32(path.parent.name.encode())
    base = torch.rand((3, 10, 10), generator=torch.Generator().manual_seed(ident))
    base = torch.nn.functional.interpolate(base[None], size=(150, 150), mode="bilinear")[0]
    noise = torch.randn((3, 150, 150),
                        generator=torch.Generator().manual_seed(zlib.crc32(str(path).encode())))
    return (0.2 + 0.6 * base + 0.02 * noise).clamp(0, 1)


def fake_load_chips(paths: Sequence[Path], **_: object) -> ChipSet:
    unique = list(dict.fromkeys(Path(p) for p in paths))
    chips = torch.stack([fake_chip(p) for p in unique]) if unique else torch.empty(0, 3, 150,
                                                                                   150)
    return ChipSet(chips, unique, [], {p: i for i, p in enumerate(unique)},
                   {p: "hog" for p in unique}, {p: 1 for p in unique})


@pytest.fixture()
def synthetic_lfw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The dataset root, with :func:`facerobust.data.chips.load_chips` faked (in its module
    and in every module that imported it by name)."""
    real = chips_module.load_chips
    for module in [m for name, m in sys.modules.items() if name.startswith("facerobust.")]:
        if getattr(module, "load_chips", None) is real:
            monkeypatch.setattr(module, "load_chips", fake_load_chips)
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    return make_lfw(tmp_path / "lfw")
