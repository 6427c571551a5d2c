"""Face data: alignment into the canonical chip space, cached chip loading, LFW protocol,
identity folders, dataset lookup and download.

Modules (import them directly; this package imports nothing heavy):
``align`` (detect_landmarks, face_chip), ``chips`` (load_chips, ChipSet), ``lfw`` (LFWPairs),
``folders`` (IdentityFolders), ``fetch`` (fetch_lfw).
"""

from __future__ import annotations

from facerobust.data.resolve import resolve_dataset

__all__ = ["resolve_dataset"]
