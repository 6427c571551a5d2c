"""The layers contract (pyproject.toml [tool.importlinter]) and the private-name rule hold."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scripts.check_private_names import KNOWN, check_file, check_tree, split_known

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def _lint_imports() -> str:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([exe, "--no-cache"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_layers_and_acyclic_contracts_are_kept() -> None:
    out = _lint_imports()
    assert "Contracts: 2 kept, 0 broken" in out


def test_no_file_uses_another_files_private_names() -> None:
    known, new = split_known(check_tree(SRC), SRC)
    assert new == [], "\n".join(map(str, new))
    assert {v.path.relative_to(SRC).as_posix() for v in known} <= set(KNOWN)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / "facerobust" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_checker_flags_private_imports_and_module_attribute_access(tmp_path: Path) -> None:
    src = _tree(tmp_path, {
        "__init__.py": "__version__ = '0'\n",
        "a/__init__.py": "",
        "a/low.py": "def _helper(): ...\ndef _own(): ...\nx = _own()\n",
        "a/high.py": ("from facerobust.a.low import _helper\n"
                      "from facerobust.a import low\n"
                      "import facerobust.a.low as lw\n"
                      "from facerobust import __version__\n"
                      "y = low._helper(), lw._helper(), low.x\n"),
        "a/rel.py": "from .low import _helper\n",
    })
    found = check_tree(src)
    assert [(v.path.name, v.line, v.name) for v in found] == [
        ("high.py", 1, "_helper"), ("high.py", 5, "_helper"), ("high.py", 5, "_helper"),
        ("rel.py", 1, "_helper")]
    assert all(v.owner == "facerobust.a.low" for v in found)
    assert check_file(src / "facerobust" / "a" / "low.py", src) == []  # own names are fine
