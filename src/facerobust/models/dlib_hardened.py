"""``dlib-resnet-hardened``: dlib-resnet adversarially fine-tuned (TRADES on embeddings, see
:mod:`facerobust.defenses.trades`) by ``facerobust models build dlib-resnet-hardened``.

The file holds the *difference* to dlib-resnet's weights in float16 (about 11 MB instead of
22 MB, and the same embeddings to ~1e-4), the SHA-256 of the dlib weights it was made from
(checked on load) and the recipe. It is looked up in the package (``models/weights/``: the
shipped build, its own SHA-256 pinned in :data:`PACKAGED_SHA256`) and then in the cache folder
the build command writes to; without either, loading says which command builds it.

>>> net = models.load("dlib-resnet-hardened")     # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facerobust.models.dlib_resnet import DEFAULT_THRESHOLD, DlibResNet
from facerobust.models.dlib_resnet import build as build_dlib
from facerobust.models.shipped import (
    WEIGHTS_DIR,
    card_beside,
    check_pinned,
    first_file,
    read_build,
    weights_to_load,
)
from facerobust.paths import cache_subdir

NAME = "dlib-resnet-hardened"
FORMAT = 1
FILE_NAME = f"{NAME}.pt"
BUILD_COMMAND = f"facerobust models build {NAME}"
PACKAGED = WEIGHTS_DIR / FILE_NAME
# the shipped build (facerobust models build dlib-resnet-hardened, 2026-12-07), checked on load
PACKAGED_SHA256 = "7cde5da9d03f74ce03d37543d10deb3884f0bf8f6f1d355cc5820fae8b372e19"


def built_path() -> Path:
    """Where the build command writes the weights (the cache's ``hardened`` folder)."""
    return cache_subdir("hardened") / FILE_NAME


def card_path(weights: Path) -> Path:
    """The card the build command writes beside the weights: ``<stem>.card.json``."""
    return card_beside(weights)


def weights_file() -> Path | None:
    """The shipped weights, else the built ones, else ``None`` (registry locator)."""
    return first_file(PACKAGED, built_path())


def state_sha256(model: nn.Module) -> str:
    """SHA-256 over a model's float32 parameters in order: identifies the base weights."""
    h = hashlib.sha256()
    for key, value in model.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_hardened(path: Path | str, tuned: nn.Module, base: nn.Module,
                  recipe: dict[str, Any]) -> Path:
    """Write ``tuned`` as a float16 difference to ``base`` with the recipe that made it."""
    ours, theirs = tuned.state_dict(), base.state_dict()
    if ours.keys() != theirs.keys():
        raise ValueError("tuned and base models have different parameters")
    delta = {k: (ours[k].float() - theirs[k].float()).half().contiguous() for k in ours}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "name": NAME, "base": "dlib-resnet",
                "base_sha256": state_sha256(base), "threshold": float(
                    getattr(tuned, "threshold", DEFAULT_THRESHOLD)),
                "recipe": recipe, "delta": delta}, path)
    return path


def read_hardened(path: Path | str) -> dict[str, Any]:
    """The saved file as a dict, checked for format and contents."""
    return read_build(path, NAME, FORMAT, BUILD_COMMAND, ("delta",))


def check_packaged(path: Path) -> None:
    """The shipped weights must be the pinned build: a damaged or swapped file is refused."""
    check_pinned(path, PACKAGED_SHA256, BUILD_COMMAND)


def build(*, weights: Path | str | None = None, **kwargs: Any) -> DlibResNet:
    """dlib-resnet plus the saved difference (registry factory); ``kwargs`` go to dlib's
    :func:`~facerobust.models.dlib_resnet.build`. A ``ValueError`` when the dlib weights are
    not the ones the difference was made from."""
    path = weights_to_load(weights, weights_file(), NAME, BUILD_COMMAND, packaged=PACKAGED,
                           pinned_sha256=PACKAGED_SHA256)
    blob = read_hardened(path)
    model = build_dlib(**kwargs)
    if state_sha256(model) != blob["base_sha256"]:
        raise ValueError(f"{path} was made from other dlib-resnet weights than the installed "
                         f"ones; rebuild it with `{BUILD_COMMAND}`")
    state = {k: v + blob["delta"][k].float() for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    model.name = NAME
    model.threshold = float(blob.get("threshold", model.threshold))
    return model.eval()
