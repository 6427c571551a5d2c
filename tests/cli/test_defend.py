from __future__ import annotations

import json
from pathlib import Path

import pytest

from facerobust import models
from facerobust.cli import main
from tests.helpers.models import PooledPixels


def test_defend_rejects_bad_spec_before_loading_anything(tmp_path: Path, capsys) -> None:
    code = main(["defend", "--defense", "jpeg:quality=75", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "no parameter 'quality'; allowed: q" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--n", "0"], "--n must be >= 1"),
    (["--eps", "2/255,abc"], "abc"),
    (["--eot", "0"], "eot: must be an integer >= 1"),
    (["--goal", "untargeted", "--norm", "l2", "--attack", "cw", "--steps", "0"],
     "steps: must be an integer >= 1"),
])
def test_defend_argument_errors(tmp_path: Path, capsys, argv, message) -> None:
    code = main(["defend", "--defense", "jpeg", "--out", str(tmp_path / "o"), *argv])
    assert code == 2 and message in capsys.readouterr().err


@pytest.mark.data
def test_defend_is_a_one_unit_audit_with_every_column(tmp_path: Path, lfw_root: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "load", lambda name, device=None: PooledPixels())
    out = tmp_path / "run"
    code = main(["defend", "--model", "pooled", "--data", str(lfw_root), "--defense",
                 "jpeg:q=60", "--defense", "bitdepth:bits=3+median:k=3", "--eps",
                 "2/255,8/255", "--steps", "3", "--n", "4", "--blackbox", "20", "--goal",
                 "impersonation", "--no-progress", "--out", str(out)])
    assert code == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["command"] == "defend" and doc["attacks"] == []
    first, second = doc["defenses"]
    assert [first["name"], second["name"]] == ["jpeg:q=60", "bitdepth:bits=3+median:k=3"]
    assert 0 < first["n_attacked"] <= 4
    for column in ("undefended", "naive", "direct", "adaptive", "blackbox", "worst_case"):
        assert len(first[column]) == 2
        assert all(r["n"] == first["n_attacked"] for r in first[column]), column
    for i in range(2):
        assert first["worst_case"][i]["k"] >= first["adaptive"][i]["k"]
    assert first["epsilon_labels"] == ["2/255", "8/255"]
    assert any("zero" in f for f in first["flags"])  # JPEG masks gradients
    assert all(f[0].isupper() and f.endswith(".") for f in first["flags"])
    html = (out / "report.html").read_text()
    assert "worst case" in html and "95% CI" in html
