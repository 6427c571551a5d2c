"""Zoo models that are built, not downloaded (dlib-resnet-hardened, dlib-student): where the
shipped copy and a local build live, the card beside the weights, and the SHA-256 pin of the
shipped file (a damaged or swapped file is refused)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from facerobust.core.torch_file import read_torch_file

WEIGHTS_DIR = Path(__file__).with_name("weights")


def card_beside(weights: Path) -> Path:
    """The card the build command writes beside the weights: ``<stem>.card.json``."""
    return weights.with_name(weights.stem + ".card.json")


def first_file(*candidates: Path) -> Path | None:
    """The first candidate that exists (the shipped copy, then a local build), else None."""
    return next((p for p in candidates if p.is_file()), None)


def check_pinned(path: Path, pinned_sha256: str, build_command: str) -> None:
    """``path`` must hash to ``pinned_sha256``; otherwise a ``ValueError`` naming the fix."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != pinned_sha256:
        raise ValueError(f"{path}: SHA-256 {digest[:12]}... is not the shipped build's "
                         f"({pinned_sha256[:12] or 'none pinned'}...); reinstall facerobust "
                         f"or rebuild with `{build_command}`")


def weights_to_load(weights: Path | str | None, default: Path | None, name: str,
                    build_command: str, *, packaged: Path, pinned_sha256: str) -> Path:
    """The file a built model loads: ``weights`` when given, else ``default`` (the shipped
    copy or a local build). The shipped copy must match its pin; no file at all is a
    ``FileNotFoundError`` naming ``build_command``."""
    path = Path(weights) if weights is not None else default
    if path is None:
        raise FileNotFoundError(f"{name} is not built on this machine: run `{build_command}`")
    if path == packaged:
        check_pinned(packaged, pinned_sha256, build_command)
    return path


def read_build(path: Path | str, name: str, fmt: int, build_command: str,
               required: tuple[str, ...]) -> dict[str, Any]:
    """A build file of model ``name`` as a dict: it must exist, be a facerobust torch file of
    format ``fmt`` and hold the ``required`` keys; each failure names ``build_command``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name} weights not found at {path}: build them with "
                                f"`{build_command}`")
    blob = read_torch_file(path, name, fmt, hint=f" (rebuild it with `{build_command}`)")
    missing = [k for k in required if k not in blob]
    if missing:
        raise ValueError(f"{path}: a {name} file without {', '.join(missing)} (rebuild it "
                         f"with `{build_command}`)")
    return blob
