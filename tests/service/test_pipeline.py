"""The gate's pipeline is the audit's: same limits, decoder, detector chain and aligner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facerobust.data.chips import chip_for_file
from facerobust.service.config import parse_gate_config
from facerobust.service.pipeline import GatePipeline, ProbeError
from tests.helpers import gate as g


@pytest.fixture(scope="module")
def pipeline() -> GatePipeline:
    return GatePipeline(parse_gate_config({"gate": {"model": g.STAND_IN,
                                                    "detector": "hog+cnn"}}))


def test_gate_chip_equals_the_audit_chip(pipeline: GatePipeline) -> None:
    path = sorted((g.DEMO / "Alvaro_Uribe").glob("*.jpg"))[0]
    audit = chip_for_file(path, None, "hog+cnn")
    assert audit.chip is not None
    np.testing.assert_array_equal(pipeline.chip(path.read_bytes(), "photo"), audit.chip)


def test_probe_embeds_with_the_defended_model(pipeline: GatePipeline) -> None:
    probe = pipeline.probe(g.demo_photo("Alvaro_Uribe"))
    with torch.no_grad():
        expected = pipeline.model(probe.chip)[0].numpy()
    np.testing.assert_allclose(probe.embedding, expected, rtol=1e-6)
    assert pipeline.distances(probe.embedding, probe.embedding[None]).tolist() == [0.0]
    assert pipeline.threshold == 1.0  # the stand-in's own default (no card)


def test_probe_errors_carry_field_and_status(pipeline: GatePipeline) -> None:
    with pytest.raises(ProbeError, match="not a decodable image") as err:
        pipeline.probe(b"GIF89a-not-really", "photos[2]")
    assert err.value.field == "photos[2]" and err.value.status == 415


def test_saved_facerobust_detector_runs_in_the_gate(tmp_path: Path) -> None:
    from facerobust.detectors import build_detector, save_detector
    from tests.helpers.models import PooledPixels

    model = PooledPixels()
    photos = [g.demo_photo("Alvaro_Uribe", i) for i in (1, 2, 3)]
    base = GatePipeline(parse_gate_config({"gate": {"model": g.STAND_IN}}))
    chips = torch.cat([base.probe(p).chip for p in photos])
    det = build_detector("squeeze", model, bits=3).fit(chips)
    det.threshold = -1.0  # every probe is above it: the gate must reject
    path = save_detector(det, tmp_path / "squeeze.pt", model_name=g.STAND_IN)
    gate = GatePipeline(parse_gate_config({"gate": {"model": g.STAND_IN,
                                                    "detectors": [str(path)]}}))
    flags = gate.probe(photos[0]).flags
    assert flags["squeeze.reject"] is True and flags["squeeze.threshold"] == -1.0
    assert flags["squeeze.score"] == pytest.approx(float(det.score(chips[:1])[0]), rel=1e-5)
    assert GatePipeline.flagged(flags)
    with pytest.raises(ValueError, match="gate.detectors: .*fitted on model"):
        GatePipeline(parse_gate_config({"gate": {"model": "tests.helpers.models:TinyResNet",
                                                 "detectors": [str(path)]}}))
    with pytest.raises(ValueError, match="no such detector file"):
        parse_gate_config({"gate": {"model": g.STAND_IN, "detectors": ["missing.pt"]}})
