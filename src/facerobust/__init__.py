"""facerobust: how easily is a face-recognition system fooled, and how much do defenses help."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
