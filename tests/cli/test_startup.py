"""The command line imports only the subcommand it runs: the top-level help stays instant."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from facerobust.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print(sorted(m for m in ("torch", "facerobust.cli.attack", "facerobust.cli.serve")
             if m in sys.modules))
"""


def _loaded(argv: list[str]) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True,
                         text=True, timeout=120, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_top_level_help_imports_no_subcommand() -> None:
    assert _loaded(["--help"]) == "[]"


def test_a_subcommand_imports_only_its_own_module() -> None:
    assert _loaded(["attack", "--help"]) == "['facerobust.cli.attack', 'torch']"
