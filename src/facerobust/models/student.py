"""A small distilled student: a few conv blocks reproducing a teacher's face descriptors.

:class:`StudentNet` follows the FaceModel contract (canonical 150x150 chip in [0, 1] in,
raw descriptor out; it downsamples to ``input_px`` inside ``forward``), so every attack,
transfer study and defense applies to it. ``facerobust distill`` trains one
(:mod:`facerobust.models.distill`) and saves it with :func:`save_student`: ``<name>.pt``
(architecture, weights, threshold); the distill study writes ``<name>.card.json`` beside it
(teacher, data, measured LFW accuracy, ms/image, and the SHA-256 of the ``.pt`` file, checked
on load). This module keeps the card's file and reading (:func:`read_card_document`); the
typed card and its computation live in :mod:`facerobust.eval.results_study` and
:mod:`facerobust.eval.distillation`.

Load it like any zoo model: ``models.load("path/to/student.pt")``, or
``models.load("distilled-student")`` for the default location the CLI writes to (the shipped
``dlib-student`` is another network: :mod:`facerobust.models.dlib_student`).

>>> net = models.load("distilled-student")     # doctest: +SKIP
>>> net(chips).shape                            # doctest: +SKIP
torch.Size([N, 128])
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facerobust.core.torch_file import read_torch_file
from facerobust.core.versioned import read_json
from facerobust.models.base import FaceModel, Metric
from facerobust.paths import cache_subdir

STUDENT_FORMAT = 1
CARD_KIND = "student-card"  # the card's kind in the versioned result wrapper
DEFAULT_NAME = "distilled-student"


def default_student_path() -> Path:
    """Where ``facerobust distill`` writes by default and ``distilled-student`` loads from."""
    return cache_subdir("students") / f"{DEFAULT_NAME}.pt"


def card_path(path: Path) -> Path:
    """The card of student weights ``path``: ``<stem>.card.json`` beside it, or the run
    folder's ``results.json`` when ``facerobust distill --out DIR`` wrote it there."""
    named = path.with_name(path.stem + ".card.json")
    in_run = path.with_name("results.json")
    return in_run if not named.is_file() and in_run.is_file() else named


class StudentNet(FaceModel):
    """Downsample to ``input_px`` gray-or-RGB, ``len(widths)`` conv blocks (3x3 conv, batch
    norm, ReLU, 2x2 max-pool), then a linear layer to ``embedding_dim``."""

    def __init__(self, *, embedding_dim: int = 128, widths: tuple[int, ...] = (16, 32, 64),
                 input_px: int = 64, metric: Metric = "euclidean", threshold: float = 0.6,
                 name: str = DEFAULT_NAME) -> None:
        super().__init__()
        if not widths or input_px < 2 ** len(widths) or embedding_dim < 1:
            raise ValueError(f"bad student shape: widths={widths}, input_px={input_px}, "
                             f"embedding_dim={embedding_dim}")
        self.name, self.metric, self.threshold = name, metric, float(threshold)
        self.embedding_dim, self.widths, self.input_px = embedding_dim, tuple(widths), input_px
        blocks: list[nn.Module] = []
        prev = 3
        for w in widths:
            blocks += [nn.Conv2d(prev, w, 3, padding=1, bias=False), nn.BatchNorm2d(w),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            prev = w
        self.features = nn.Sequential(*blocks)
        side = input_px // 2 ** len(widths)
        self.fc = nn.Linear(prev * side * side, embedding_dim)

    def config(self) -> dict[str, Any]:
        return {"embedding_dim": self.embedding_dim, "widths": list(self.widths),
                "input_px": self.input_px, "metric": self.metric,
                "threshold": self.threshold, "name": self.name}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        y = F.interpolate(x, size=(self.input_px, self.input_px), mode="bilinear",
                          antialias=True, align_corners=False)
        y = (y - 0.5) / 0.25
        return self.fc(self.features(y).flatten(1))


def sha256_of(path: Path) -> str:
    """SHA-256 hex digest of the file ``path``."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_student(path: Path, model: StudentNet) -> str:
    """Write ``path`` (weights + architecture); returns its SHA-256 for the card."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": STUDENT_FORMAT, "config": model.config(),
                "state_dict": model.state_dict()}, path)
    return sha256_of(path)


def read_card_document(path: Path) -> dict[str, Any]:
    """The card of student weights ``path`` as a JSON object: a result file of kind
    ``student-card`` (or a card written before the result wrapper); its version is checked
    by the typed reader, :func:`facerobust.eval.results_study.load_card`."""
    cp = card_path(Path(path))
    if not cp.is_file():
        raise FileNotFoundError(f"student card not found: {cp} (written by facerobust distill)")
    doc = read_json(cp, "student card")
    if not isinstance(doc, dict) or doc.get("kind", CARD_KIND) != CARD_KIND \
            or not isinstance(doc.get("weights_sha256"), str):
        raise ValueError(f"{cp}: not a student card (no kind {CARD_KIND!r} with a "
                         "weights_sha256)")
    if "kind" not in doc and doc.get("schema_version") != 1:  # a card from before the wrapper
        raise ValueError(f"{cp}: student card schema version {doc.get('schema_version')!r} "
                         "cannot be read by this facerobust (it reads result files with a "
                         "kind and the cards of schema 1); re-run facerobust distill")
    return dict(doc)


def load_student(path: Path | str, *, verify: bool = True) -> StudentNet:
    """Rebuild a student saved by :func:`save_student`; with ``verify`` the weights' SHA-256
    must match its card."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"student weights not found: {path}")
    if verify:
        expected = read_card_document(path).get("weights_sha256")
        if expected != sha256_of(path):
            raise ValueError(f"{path}: weights do not match the SHA-256 in "
                             f"{card_path(path).name}; re-run facerobust distill")
    blob = read_torch_file(path, "facerobust student", STUDENT_FORMAT)
    try:
        cfg = dict(blob["config"])
        model = StudentNet(embedding_dim=int(cfg["embedding_dim"]),
                           widths=tuple(int(w) for w in cfg["widths"]),
                           input_px=int(cfg["input_px"]), metric=cfg["metric"],
                           threshold=float(cfg["threshold"]), name=str(cfg["name"]))
        model.load_state_dict(blob["state_dict"])
    except (KeyError, TypeError, RuntimeError) as err:
        raise ValueError(f"{path}: student file is missing or has bad {err}") from None
    return model.eval()


# registry hooks (facerobust.models.registry)
def build_default(**_: Any) -> StudentNet:
    """The student at :func:`default_student_path` (registry factory of ``distilled-student``)."""
    return load_student(default_student_path())


def locate_default() -> Path | None:
    """The default student's weights when present (registry locator)."""
    path = default_student_path()
    return path if path.is_file() else None
