"""The registry of audit unit kinds, in the order they are planned, summarised and judged.
A new kind of unit: its own module here plus one line in :data:`UNIT_KINDS`."""

from facerobust.eval.kinds.attack import ATTACK
from facerobust.eval.kinds.certify import CERTIFY
from facerobust.eval.kinds.clean import CLEAN
from facerobust.eval.kinds.defense import DEFENSE
from facerobust.eval.kinds.detector import DETECTOR
from facerobust.eval.kinds.fusion import FUSION
from facerobust.eval.kinds.minimal import MINIMAL
from facerobust.eval.kinds.physical import PHYSICAL
from facerobust.eval.unit_kind import UnitKind

UNIT_KINDS: tuple[UnitKind, ...] = (
    CLEAN,
    ATTACK,
    MINIMAL,
    DEFENSE,
    FUSION,
    DETECTOR,
    CERTIFY,
    PHYSICAL,
)

__all__ = ["UNIT_KINDS", "UnitKind"]
