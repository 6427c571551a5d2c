"""``dlib-student``: a slimmed dlib ResNet distilled from dlib-resnet (issue 29), shipped in the
package and rebuilt by ``facerobust models build dlib-student``.

The student keeps dlib's design (7x7 stem, residual blocks with dlib's zero-padded shortcut,
average pool, 128-d linear descriptor, Euclidean distance) with fewer channels and blocks, and
reads the canonical chip downscaled to ``input_px`` inside ``forward``, so it is ~5x faster
than the teacher at batch 32 on one thread. Its layout (:class:`StudentLayout`) is stored with
the float16 weights, so the file alone rebuilds it. The shipped file's SHA-256 is pinned in
:data:`PACKAGED_SHA256` and checked on load; a build in the cache folder is used otherwise.

>>> net = models.load("dlib-student")     # doctest: +SKIP
>>> net(chips).shape                       # doctest: +SKIP
torch.Size([N, 128])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facerobust.models.base import FaceModel
from facerobust.models.dlib_resnet import DEFAULT_THRESHOLD, add_zero_padded
from facerobust.models.shipped import (
    WEIGHTS_DIR,
    card_beside,
    check_pinned,
    first_file,
    read_build,
    weights_to_load,
)
from facerobust.paths import cache_subdir

NAME = "dlib-student"
FORMAT = 1
FILE_NAME = f"{NAME}.pt"
BUILD_COMMAND = f"facerobust models build {NAME}"
PACKAGED = WEIGHTS_DIR / FILE_NAME
# the shipped build (facerobust models build dlib-student, 2026-12-07), checked on load
PACKAGED_SHA256 = "333846627bbec8af395962eacb429fe9ab59e58c5f2a44949d2c4ff34d381d4f"


@dataclass(frozen=True)
class BlockLayout:
    """One residual block: ``conv1`` (``cin`` -> ``mid``, 3x3, ``stride``), ``conv2`` (``mid``
    -> ``cout``); output channel ``j`` adds input channel ``shortcut[j]`` (``cin``: none)."""

    cin: int
    mid: int
    cout: int
    stride: int
    shortcut: tuple[int, ...]

    def __post_init__(self) -> None:
        if min(self.cin, self.mid, self.cout) < 1 or self.stride not in (1, 2):
            raise ValueError(f"bad student block {self}")
        if len(self.shortcut) != self.cout or not all(0 <= s <= self.cin for s in self.shortcut):
            raise ValueError(f"student block shortcut must map {self.cout} outputs to input "
                             f"channels 0..{self.cin}, got {list(self.shortcut)}")


@dataclass(frozen=True)
class StudentLayout:
    """The student's shape: input side ``input_px``, ``stem`` channels, its blocks in order."""

    input_px: int
    stem: int
    blocks: tuple[BlockLayout, ...]

    def __post_init__(self) -> None:
        if not 64 <= self.input_px <= 150 or self.stem < 1 or not self.blocks:
            raise ValueError(f"bad student layout: input_px={self.input_px}, stem={self.stem}, "
                             f"{len(self.blocks)} blocks")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> StudentLayout:
        """Inverse of :meth:`to_dict`."""
        blocks = tuple(BlockLayout(int(b["cin"]), int(b["mid"]), int(b["cout"]),
                                   int(b["stride"]), tuple(int(s) for s in b["shortcut"]))
                       for b in doc["blocks"])
        return cls(int(doc["input_px"]), int(doc["stem"]), blocks)


class StudentBlock(nn.Module):
    """dlib's residual block with a channel map on the shortcut (kept channels of the input)."""

    shortcut: torch.Tensor  # buffer

    def __init__(self, layout: BlockLayout) -> None:
        super().__init__()
        self.stride = layout.stride
        self.conv1 = nn.Conv2d(layout.cin, layout.mid, 3, stride=layout.stride,
                               padding=1 if layout.stride == 1 else 0)
        self.conv2 = nn.Conv2d(layout.mid, layout.cout, 3, padding=1)
        self.register_buffer("shortcut", torch.tensor(layout.shortcut, dtype=torch.long),
                             persistent=False)
        self.identity = layout.cin == layout.cout and layout.shortcut == tuple(range(layout.cin))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x), inplace=True))
        s = x if self.stride == 1 else F.avg_pool2d(x, 2, 2)
        if not self.identity:
            s = torch.cat([s, s.new_zeros(s.shape[0], 1, s.shape[2], s.shape[3])], 1)
            s = s[:, self.shortcut]
        return F.relu(add_zero_padded(s, y), inplace=True)


class DlibStudent(FaceModel):
    """The slim dlib network of ``layout``; ``forward`` returns the raw 128-d descriptor."""

    name = NAME
    embedding_dim = 128
    metric = "euclidean"
    mean_rgb: torch.Tensor  # buffer

    def __init__(self, layout: StudentLayout, *, threshold: float = DEFAULT_THRESHOLD) -> None:
        super().__init__()
        self.layout, self.threshold = layout, float(threshold)
        self.register_buffer("mean_rgb", torch.zeros(1, 3, 1, 1))
        self.stem = nn.Conv2d(3, layout.stem, 7, stride=2)
        self.blocks = nn.Sequential(*(StudentBlock(b) for b in layout.blocks))
        self.fc = nn.Linear(layout.blocks[-1].cout, 128, bias=False)
        for conv in self.modules():
            if isinstance(conv, nn.Conv2d):
                conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        px = self.layout.input_px
        y = F.interpolate(x, size=(px, px), mode="bilinear", antialias=True,
                          align_corners=False)
        y = ((y * 255.0 - self.mean_rgb) / 256.0).contiguous(memory_format=torch.channels_last)
        y = F.max_pool2d(F.relu(self.stem(y), inplace=True), 3, 2)
        return self.fc(self.blocks(y).mean(dim=(2, 3)))


def built_path() -> Path:
    """Where the build command writes the weights: the cache's ``dlib-student`` folder (not
    ``students``, where ``facerobust distill`` of earlier releases wrote ``dlib-student.pt``)."""
    return cache_subdir(NAME) / FILE_NAME


def card_path(weights: Path) -> Path:
    """The card the build command writes beside the weights: ``<stem>.card.json``."""
    return card_beside(weights)


def weights_file() -> Path | None:
    """The shipped weights, else the built ones, else ``None`` (registry locator)."""
    return first_file(PACKAGED, built_path())


def save_student_file(path: Path | str, model: DlibStudent, recipe: dict[str, Any]) -> Path:
    """Write ``model`` (float16 weights, layout, threshold) with the recipe that made it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() and k != "mean_rgb" else v).contiguous()
             for k, v in model.state_dict().items()}
    torch.save({"format": FORMAT, "name": NAME, "teacher": "dlib-resnet",
                "layout": model.layout.to_dict(), "threshold": model.threshold,
                "recipe": recipe, "state_dict": state}, path)
    return path


def read_student_file(path: Path | str) -> dict[str, Any]:
    """The saved file as a dict, checked for format and contents."""
    return read_build(path, NAME, FORMAT, BUILD_COMMAND, ("layout", "state_dict", "threshold"))


def is_dlib_student_file(path: Path | str) -> bool:
    """Whether ``path`` holds a build of this model (rather than a ``facerobust distill``
    student): a readable torch file naming it."""
    try:
        blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any unreadable file is simply not one of ours
        return False
    return isinstance(blob, dict) and blob.get("name") == NAME


def check_packaged(path: Path) -> None:
    """The shipped weights must be the pinned build: a damaged or swapped file is refused."""
    check_pinned(path, PACKAGED_SHA256, BUILD_COMMAND)


def build(*, weights: Path | str | None = None, **_: Any) -> DlibStudent:
    """The student from ``weights`` (default: shipped, else built; registry factory)."""
    path = weights_to_load(weights, weights_file(), NAME, BUILD_COMMAND, packaged=PACKAGED,
                           pinned_sha256=PACKAGED_SHA256)
    blob = read_student_file(path)
    try:
        model = DlibStudent(StudentLayout.from_dict(blob["layout"]),
                            threshold=float(blob["threshold"]))
        model.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path}: student file has a bad layout or weights: {err}") from None
    return model.eval()
