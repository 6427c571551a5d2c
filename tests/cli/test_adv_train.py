from __future__ import annotations

import json
from pathlib import Path

import pytest

from facerobust.cli import main


@pytest.mark.data
@pytest.mark.slow
def test_adv_train_cli_reports_holdout_figures(lfw_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "adv"
    code = main(["adv-train", "--data", str(lfw_root), "--train-identities", "3",
                 "--holdout-identities", "3", "--images", "3", "--steps", "1",
                 "--layers", "1", "--max-seconds", "30", "--out", str(out)])
    assert code == 0
    result = json.loads((out / "results.json").read_text())
    assert result["kind"] == "adv-train"
    assert not set(result["train_identities"]) & set(result["holdout_identities"])
    assert result["before"] is not None and result["after"] is not None
    assert 0.0 <= result["after"]["clean_accuracy"] <= 1.0
    assert result["robustness_gain"] == pytest.approx(
        result["before"]["attack_success"] - result["after"]["attack_success"])
    assert (out / "model.pt").stat().st_size > 1_000_000


def test_adv_train_rejects_tiny_splits(tmp_path: Path) -> None:
    assert main(["adv-train", "--train-identities", "1", "--out", str(tmp_path)]) == 2


def test_adv_train_passes_the_trades_options(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def capture(**kwargs):  # type: ignore[no-untyped-def]
        seen.update(kwargs)
        raise ValueError("captured")

    monkeypatch.setattr("facerobust.cli.adv_train.adversarial_training_study", capture)
    code = main(["adv-train", "--loss", "trades", "--keep", "30", "--beta", "10",
                 "--schedule", "cosine", "--bf16-attack", "--trades-target", "teacher",
                 "--photos-per-person", "4", "--genuine", "2", "--impostor", "3",
                 "--checkpoint", str(tmp_path / "c.ckpt"), "--out", str(tmp_path / "o")])
    assert code == 2
    o = seen["training"]
    assert (o.loss, o.keep, o.beta, o.schedule, o.bf16_attack, o.trades_target) == (
        "trades", 30.0, 10.0, "cosine", True, "teacher")
    assert (o.photos_per_person, o.genuine, o.impostor) == (4, 2.0, 3.0)
    assert o.checkpoint == str(tmp_path / "c.ckpt")
    with pytest.raises(SystemExit):
        main(["adv-train", "--loss", "kl", "--out", str(tmp_path / "p")])
