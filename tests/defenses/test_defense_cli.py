from __future__ import annotations

import json
from pathlib import Path

import pytest

from facerobust import models
from facerobust.cli import main
from facerobust.defenses import cli as defend_cli


def test_defend_rejects_bad_spec_before_loading_anything(tmp_path: Path, capsys) -> None:
    code = main(["defend", "--defense", "jpeg:quality=75", "--out", str(tmp_path)])
    assert code == 2
    assert "no parameter 'quality'; allowed: q" in capsys.readouterr().err
    assert not (tmp_path / "defense.json").exists()


def test_defend_end_to_end_on_a_tiny_model(tmp_path: Path, monkeypatch, tiny, pairs,
                                           capsys) -> None:
    x1, x2, same = pairs
    monkeypatch.setattr(models, "load", lambda name, device=None: tiny)
    monkeypatch.setattr(defend_cli, "load_pairs",
                        lambda dataset, data, n, progress: (x1, x2, same, "synthetic", 0))
    code = main(["defend", "--model", "tiny", "--defense", "jpeg:q=60",
                 "--defense", "bitdepth:bits=3+median:k=3", "--eps", "2/255,8/255",
                 "--steps", "3", "--n", "4", "--blackbox", "20", "--no-progress",
                 "--out", str(tmp_path / "run")])
    assert code == 0
    doc = json.loads((tmp_path / "run" / "defense.json").read_text())
    assert [r["name"] for r in doc["results"]] == ["jpeg:q=60", "bitdepth:bits=3+median:k=3"]
    first = doc["results"][0]
    assert first["n_attacked"] == 4 and first["blackbox"] is not None
    assert set(first["adaptive"]) == {repr(2 / 255), repr(8 / 255)}
    assert first["masking"]["zero_gradients"] is True
    out = capsys.readouterr().out
    assert "jpeg:q=60" in out and "MASKING" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--n", "0"], "--n must be >= 1"),
    (["--eps", "2/255,abc"], "abc"),
])
def test_defend_argument_errors(tmp_path: Path, capsys, argv, message) -> None:
    code = main(["defend", "--defense", "jpeg", "--out", str(tmp_path), *argv])
    assert code == 2 and message in capsys.readouterr().err
