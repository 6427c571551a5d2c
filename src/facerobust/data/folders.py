"""Identity-folder datasets: ``root/<identity>/<image>`` (LFW's image folder has this layout).

>>> from facerobust.data.folders import IdentityFolders
>>> ds = IdentityFolders("/data/lfw-gray/images", min_images=10)   # doctest: +SKIP
>>> people = ds.identities()     # split with facerobust.eval.tasks.identity_split

Identification splits live in :mod:`facerobust.eval.tasks` (one split for every command).
"""

from __future__ import annotations

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

    def __len__(self) -> int:
        return len(self._ids)
