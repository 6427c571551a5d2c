"""Input-transformation defenses, always judged against adaptive (BPDA/EOT) attacks
(the judging itself is :mod:`facerobust.eval.defense_eval`, one layer up).

>>> from facerobust.defenses import DefendedModel, adaptive, parse_defense
>>> defense = parse_defense("jpeg:q=75+median:k=3")
"""

from __future__ import annotations

from facerobust.defenses.base import Compose, Defense, Identity
from facerobust.defenses.masking import MaskingFlags, masking_flags
from facerobust.defenses.model import DefendedModel, adaptive
from facerobust.defenses.spec import DEFENSES, known_defenses, parse_defense
from facerobust.defenses.training import Robustness, TrainingReport, adversarial_finetune
from facerobust.defenses.transforms import JPEG, TVM, BitDepth, GaussianBlur, Median, ResizePad

__all__ = [
    "DEFENSES",
    "JPEG",
    "TVM",
    "BitDepth",
    "Compose",
    "DefendedModel",
    "Defense",
    "GaussianBlur",
    "Identity",
    "MaskingFlags",
    "Median",
    "ResizePad",
    "Robustness",
    "TrainingReport",
    "adaptive",
    "adversarial_finetune",
    "known_defenses",
    "masking_flags",
    "parse_defense",
]
