from __future__ import annotations

import json

import pytest

from facerobust import __version__
from facerobust.cli import COMMANDS, build_parser, main


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name, _, _ in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", [c[0] for c in COMMANDS])
def test_every_subcommand_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert "usage: facerobust" in capsys.readouterr().out


def test_info_json_reports_versions_models_and_cache(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path / "cache"))
    assert main(["info", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["versions"]["facerobust"] == __version__
    assert facts["versions"]["torch"].startswith("2.13.0")
    assert facts["cache_dir"] == str(tmp_path / "cache")
    names = [m["name"] for m in facts["models"]]
    assert "dlib-resnet" in names
    dlib = next(m for m in facts["models"] if m["name"] == "dlib-resnet")
    assert dlib["available"] and dlib["weights"].endswith(".dat")


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
    assert build_parser().prog == "facerobust"
