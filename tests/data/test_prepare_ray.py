"""``facerobust data prepare --executor ray``: the same chips, byte for byte, and the same counts
as the local executor, on a local Ray cluster (2 CPUs); bad option combinations stop early."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from facerobust.cli import main
from facerobust.cli.demo import embedded_dataset
from facerobust.data.prepare import prepare_dataset


def _tree(root: Path) -> Path:
    """5 demo faces in two folders, a corrupt JPEG and a face-less PNG."""
    for i, src in enumerate(sorted(embedded_dataset().rglob("*.jpg"))[:5]):
        dest = root / f"p{i % 2}" / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dest)
    (root / "p0" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    cv2.imwrite(str(root / "blank.png"), np.full((120, 160, 3), 200, np.uint8))
    return root


def _entries(cache: Path) -> dict[str, bytes]:
    return {p.relative_to(cache).as_posix(): p.read_bytes()
            for p in sorted(cache.rglob("*")) if p.is_file()}


def test_ray_options_are_checked_before_any_work(tmp_path: Path, capsys: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["data", "prepare", str(tmp_path), "--address", "h:1"]) == 2
    assert "--address needs --executor ray" in capsys.readouterr().err
    assert main(["data", "prepare", str(tmp_path), "--executor", "ray", "--workers", "2"]) == 2
    assert "--workers is for the local executor" in capsys.readouterr().err
    with pytest.raises(ValueError, match="executor: 'spark' is not one of local, ray"):
        prepare_dataset(tmp_path, executor="spark")
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["data", "prepare", str(tmp_path), "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert "--executor ray needs the ray package" in err and "facerobust[scale]" in err


@pytest.mark.slow
def test_ray_prepares_the_same_chips_as_the_local_executor(
        tmp_path: Path, ray_cluster: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: Any) -> None:
    root = _tree(tmp_path / "photos")
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "local"))
    local = prepare_dataset(root, progress=False)
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "ray"))
    assert main(["data", "prepare", str(root), "--executor", "ray", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "7 image(s) under" in out and "2 Ray worker(s)" in out
    assert f"ok:                 {sum(local.ok.values())} " in out
    assert f"no face:            {local.no_face}" in out and "corrupt/unreadable: 1" in out
    chips = _entries(tmp_path / "local" / "chips")
    assert sum(name.endswith(".png") for name in chips) == sum(local.ok.values()) >= 4
    assert _entries(tmp_path / "ray" / "chips") == chips
    # a rerun on Ray finds everything cached
    again = prepare_dataset(root, progress=False, executor="ray")
    assert (again.ok, again.no_face, again.unreadable) == (local.ok, local.no_face, 1)
    assert _entries(tmp_path / "ray" / "chips") == chips
