"""Cut a :class:`~facerobust.models.dlib_student.DlibStudent` out of dlib-resnet: keep some of
its residual blocks and, per stage, the channels most active on sample chips, with the
teacher's weights for what is kept (a warm start for distillation).

Keeping every block and channel at 150 px reproduces the teacher exactly (tested).

>>> choice = SlimChoice(112, (0, 3, 4, 7, 8, 10, 11, 13), (0.5,) * 5)
>>> student = slim_from_teacher(teacher, chips, choice)              # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from facerobust.models.dlib_resnet import STAGES, DlibResNet, ResidualBlock
from facerobust.models.dlib_student import BlockLayout, DlibStudent, StudentBlock, StudentLayout


@dataclass(frozen=True)
class SlimChoice:
    """Input side ``input_px``; the teacher's block indices kept (``keep``; every downsampling
    block must stay); ``fraction`` of channels kept in each of dlib's five stages."""

    input_px: int
    keep: tuple[int, ...]
    fraction: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.fraction) != len(STAGES) or not all(0 < f <= 1 for f in self.fraction):
            raise ValueError(f"fraction needs {len(STAGES)} values in (0, 1], got "
                             f"{list(self.fraction)}")
        down = [b for s, b, stride in teacher_blocks() if stride == 2]
        if any(b not in self.keep for b in down) or not set(self.keep) <= set(range(
                len(teacher_blocks()))):
            raise ValueError(f"keep must list teacher blocks 0..{len(teacher_blocks()) - 1} "
                             f"including every downsampling block {down}, got "
                             f"{list(self.keep)}")


def teacher_blocks() -> list[tuple[int, int, int]]:
    """``(stage, block index, stride)`` of every teacher block, input side first."""
    out, b = [], 0
    for s, (_, plain, down) in enumerate(STAGES):
        for stride in ([2] if down else []) + [1] * plain:
            out.append((s, b, stride))
            b += 1
    return out


def _activity(teacher: DlibResNet, chips: torch.Tensor, px: int) -> dict[str, torch.Tensor]:
    """Mean |activation| per channel of the stem and of every block's middle and output."""
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        x = F.interpolate(chips, size=(px, px), mode="bilinear", antialias=True,
                          align_corners=False)
        y = F.max_pool2d(F.relu(teacher.stem((x * 255.0 - teacher.mean_rgb) / 256.0)), 3, 2)
        for i, blk in enumerate(cast(list[ResidualBlock], list(teacher.blocks))):
            out[f"mid{i}"] = F.relu(blk.conv1(y)).abs().mean((0, 2, 3))
            y = blk(y)
            out[f"out{i}"] = y.abs().mean((0, 2, 3))
    return out


def _top(values: torch.Tensor, fraction: float) -> list[int]:
    k = max(1, round(len(values) * fraction))
    return sorted(torch.topk(values, k).indices.tolist())


def _copy_conv(dst: nn.Conv2d, src: nn.Conv2d, rows: list[int], cols: list[int]) -> None:
    """The teacher convolution's kept output ``rows`` and input ``cols`` into ``dst``."""
    if dst.bias is None or src.bias is None:
        raise ValueError("dlib's convolutions all have a bias (affine folded in)")
    dst.weight.copy_(src.weight[rows][:, cols])
    dst.bias.copy_(src.bias[rows])


def slim_from_teacher(teacher: DlibResNet, chips: torch.Tensor, choice: SlimChoice
                      ) -> DlibStudent:
    """The student of ``choice`` with the teacher's weights on the kept channels (chosen by
    mean activation on ``chips`` at the student's input size)."""
    act = _activity(teacher, chips, choice.input_px)
    plan = teacher_blocks()
    stage = {s: _top(act[f"out{[b for st, b, _ in plan if st == s][-1]}"], f)
             for s, f in enumerate(choice.fraction)}
    prev, layouts, picks = stage[0], [], []
    for s, b, stride in plan:
        if b not in choice.keep:
            continue
        mid = _top(act[f"mid{b}"], choice.fraction[s])
        pos = {c: j for j, c in enumerate(prev)}
        layouts.append(BlockLayout(len(prev), len(mid), len(stage[s]), stride,
                                   tuple(pos.get(c, len(prev)) for c in stage[s])))
        picks.append((b, prev, mid, stage[s]))
        prev = stage[s]
    student = DlibStudent(StudentLayout(choice.input_px, len(stage[0]), tuple(layouts)),
                          threshold=teacher.threshold)
    with torch.no_grad():
        student.mean_rgb.copy_(teacher.mean_rgb)
        _copy_conv(student.stem, teacher.stem, stage[0], [0, 1, 2])
        mine = cast(list[StudentBlock], list(student.blocks))
        for blk, (b, cin, mid, cout) in zip(mine, picks, strict=True):
            src = cast(ResidualBlock, teacher.blocks[b])
            _copy_conv(blk.conv1, src.conv1, mid, cin)
            _copy_conv(blk.conv2, src.conv2, cout, mid)
        student.fc.weight.copy_(teacher.fc.weight[:, prev])
    return student
