"""The built zoo models that ship in the package (dlib-resnet-hardened, dlib-student): a
damaged shipped file is refused on load, naming the fix."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from facerobust import models
from facerobust.models import dlib_hardened, dlib_student


@pytest.mark.parametrize("module", [dlib_hardened, dlib_student], ids=lambda m: m.NAME)
def test_damaged_shipped_build_is_refused(module: ModuleType, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "weights" / module.FILE_NAME
    bad.parent.mkdir()
    data = bytearray(module.PACKAGED.read_bytes())
    data[-100] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(module, "PACKAGED", bad)
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="is not the shipped build.*reinstall facerobust"):
        models.load(module.NAME)
