"""Identity-folder datasets: ``root/<identity>/<image>`` (LFW's image folder has this layout).

>>> from facerobust.data.folders import IdentityFolders
>>> ds = IdentityFolders("/data/lfw-gray/images", min_images=10)   # doctest: +SKIP
>>> gallery, probe = ds.gallery_probe_split(3, seed=0)             # doctest: +SKIP
"""

from __future__ import annotations

import random
from pathlib import Path

from facerobust.data.lfw import IMAGE_SUFFIXES


class IdentityFolders:
    """Identities = sub-folders of ``root`` holding at least ``min_images`` image files."""

    def __init__(self, root: Path | str, *, min_images: int = 1) -> None:
        if not isinstance(min_images, int) or isinstance(min_images, bool) or min_images < 1:
            raise ValueError(f"min_images must be an integer >= 1, got {min_images!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"identity folder root not found: {self.root}")
        self.min_images = min_images
        self._ids: dict[str, list[Path]] = {}
        for folder in sorted(d for d in self.root.iterdir() if d.is_dir()):
            files = sorted(f for f in folder.iterdir()
                           if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if len(files) >= min_images:
                self._ids[folder.name] = files
        if not self._ids:
            raise ValueError(f"{self.root}: no identity sub-folder has >= {min_images} images")

    def identities(self) -> dict[str, list[Path]]:
        """Identity name -> sorted image paths (a copy)."""
        return {k: list(v) for k, v in self._ids.items()}

    def split_identities(self, k: int) -> list[str]:
        """Names used by :meth:`gallery_probe_split` (>= ``k + 1`` images); label i = names[i]."""
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k (gallery images per identity) must be an integer >= 1, got {k!r}")
        return [name for name, files in self._ids.items() if len(files) > k]

    def gallery_probe_split(self, k: int, *, seed: int
                            ) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]]]:
        """Closed-set split: per identity with > ``k`` images, ``k`` random gallery images and
        the rest as probes. Labels index :meth:`split_identities`. Deterministic in ``seed``."""
        names = self.split_identities(k)
        if not names:
            raise ValueError(f"{self.root}: no identity has more than k={k} images")
        rng = random.Random(seed)
        gallery: list[tuple[Path, int]] = []
        probe: list[tuple[Path, int]] = []
        for label, name in enumerate(names):
            files = list(self._ids[name])
            rng.shuffle(files)
            gallery.extend((p, label) for p in sorted(files[:k]))
            probe.extend((p, label) for p in sorted(files[k:]))
        return gallery, probe

    def __len__(self) -> int:
        return len(self._ids)
