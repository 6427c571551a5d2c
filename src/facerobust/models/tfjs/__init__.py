"""TensorFlow.js models in PyTorch: a graph-model interpreter and a weights-manifest reader."""

from __future__ import annotations

from facerobust.models.tfjs.graph import TFGraph, default_outputs, load_graph_model
from facerobust.models.tfjs.ops import OPS
from facerobust.models.tfjs.weights import read_manifest, read_weights_manifest_file

__all__ = [
    "OPS",
    "TFGraph",
    "default_outputs",
    "load_graph_model",
    "read_manifest",
    "read_weights_manifest_file",
]
