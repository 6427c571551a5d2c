"""One face system: the gate's capture is the audit's (limits, decoder, detector chain,
aligner), decisions follow the one accept rule, detectors reject, photo space is
differentiable through the very plan that decides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facerobust.data.capture import Capture, CaptureError
from facerobust.data.chips import chip_for_file
from facerobust.models.base import accepts
from facerobust.service.config import parse_gate_config
from facerobust.service.pipeline import gate_system
from facerobust.system import FaceSystem, Gallery, PhotoOptions, SystemSpec
from facerobust.system.spec import parse_system
from tests.helpers import gate as g
from tests.helpers.models import PooledPixels


@pytest.fixture(scope="module")
def system() -> FaceSystem:
    return gate_system(parse_gate_config({"gate": {"model": g.STAND_IN,
                                                   "detector": "hog+cnn"}}))


def test_gate_chip_equals_the_audit_chip(system: FaceSystem) -> None:
    path = sorted((g.DEMO / "Alvaro_Uribe").glob("*.jpg"))[0]
    audit = chip_for_file(path, None, "hog+cnn")
    assert audit.chip is not None
    np.testing.assert_array_equal(system.capture(path.read_bytes()).chip, audit.chip)


def test_probe_embeds_with_the_defended_model(system: FaceSystem) -> None:
    probe = system.probe(g.demo_photo("Alvaro_Uribe"))
    with torch.no_grad():
        expected = system.model(probe.chip)[0].numpy()
    np.testing.assert_allclose(probe.embedding, expected, rtol=1e-6)
    assert system.distances(probe.embedding, probe.embedding[None]).tolist() == [0.0]
    assert system.threshold == 1.0  # the stand-in's own default (no card)


def test_capture_errors_carry_field_and_status(system: FaceSystem) -> None:
    with pytest.raises(CaptureError, match="a GIF image by its content") as err:
        system.probe(b"GIF89a-not-really", "photos[2]")  # the gate allows JPEG and PNG only
    assert err.value.field == "photos[2]" and err.value.status == 415
    with pytest.raises(CaptureError, match="not a decodable image") as err:
        Capture("hog")(b"GIF89a-not-really", "photo")  # any format: the decoder refuses it
    assert err.value.status == 415
    small = Capture("hog", max_bytes=100)
    with pytest.raises(CaptureError, match="too large: .* bytes") as big:
        small(g.demo_photo("Alvaro_Uribe"), "photo")
    assert big.value.status == 413


def test_accept_rule_is_inclusive_at_the_threshold() -> None:
    assert accepts(0.6, 0.6) and not accepts(0.6000001, 0.6)
    np.testing.assert_array_equal(accepts(np.array([0.5, 0.6, 0.7]), 0.6), [True, True, False])
    assert accepts(torch.tensor([0.6, 0.61]), 0.6).tolist() == [True, False]


def test_verify_and_identify_decide_by_the_threshold(system: FaceSystem) -> None:
    a = system.probe(g.demo_photo("Alvaro_Uribe", 0))
    b = system.probe(g.demo_photo("Alejandro_Toledo", 0))
    gallery = Gallery(("alvaro", "alejandro"), np.stack([a.embedding, b.embedding]))
    same = system.verify(a, "alvaro", a.embedding[None])
    assert same.accepted and same.distance == 0.0 and same.reason == "match"
    d = float(system.distances(a.embedding, b.embedding[None])[0])
    other = system.verify(a, "alejandro", b.embedding[None])
    assert other.accepted == (d <= system.threshold)
    assert system.identify(b, gallery).identity == "alejandro"
    missing = system.verify(a, "nobody", np.zeros((0, a.embedding.size), np.float32))
    assert not missing.accepted and missing.reason == "identity not enrolled"
    strict = FaceSystem(system.base, threshold=d / 2 if d > 0 else 1e-9)
    assert not strict.verify(a, "alejandro", b.embedding[None]).accepted
    with pytest.raises(ValueError, match="2 names but 1 templates"):
        Gallery(("x", "y"), a.embedding[None])


def test_saved_facerobust_detector_rejects_in_the_system(tmp_path: Path) -> None:
    from facerobust.detectors import build_detector, save_detector

    model = PooledPixels()
    photos = [g.demo_photo("Alvaro_Uribe", i) for i in (1, 2, 3)]
    base = gate_system(parse_gate_config({"gate": {"model": g.STAND_IN}}))
    chips = torch.cat([base.probe(p).chip for p in photos])
    det = build_detector("squeeze", model, bits=3).fit(chips)
    det.threshold = -1.0  # every probe is above it: the system must reject
    path = save_detector(det, tmp_path / "squeeze.pt", model_name=g.STAND_IN)
    system = gate_system(parse_gate_config({"gate": {"model": g.STAND_IN,
                                                     "detectors": [str(path)]}}))
    probe = system.probe(photos[0])
    flags = probe.flags
    assert flags["squeeze.reject"] is True and flags["squeeze.threshold"] == -1.0
    assert flags["squeeze.score"] == pytest.approx(float(det.score(chips[:1])[0]), rel=1e-5)
    decision = system.verify(probe, "me", probe.embedding[None])  # distance 0, still refused
    assert not decision.accepted and decision.reason == "rejected by a detector"
    with pytest.raises(ValueError, match="gate.detectors: .*fitted on model"):
        gate_system(parse_gate_config({"gate": {"model": "tests.helpers.models:TinyResNet",
                                                "detectors": [str(path)]}}))
    with pytest.raises(ValueError, match="no such detector file"):
        parse_gate_config({"gate": {"model": g.STAND_IN, "detectors": ["missing.pt"]}})


def test_photo_model_is_the_differentiable_twin_of_the_probe(system: FaceSystem) -> None:
    data = g.demo_photo("Alvaro_Uribe")
    captured = system.capture(data)
    photo = torch.from_numpy(captured.rgb).permute(2, 0, 1)[None].float().div(255)
    photo.requires_grad_(True)
    net = system.photo_model(captured.plan)
    out = net(photo)
    exact = system.probe(data).embedding
    np.testing.assert_allclose(out.detach()[0].numpy(), exact, atol=0.02)
    (out * torch.linspace(-1, 1, out.shape[1])).sum().backward()
    assert photo.grad is not None and float(photo.grad.abs().sum()) > 0
    eot = system.photo_model(captured.plan, PhotoOptions(eot_samples=2, seed=1))
    assert eot(photo).shape == out.shape


def test_system_section_is_shared_and_validated() -> None:
    spec = parse_system({"model": g.STAND_IN, "defense": "jpeg:q=75", "threshold": 0.4})
    assert spec == SystemSpec(model=g.STAND_IN, defense="jpeg:q=75", threshold=0.4)
    cfg = parse_gate_config({"system": {"model": g.STAND_IN, "detector": "cnn"},
                             "gate": {"expose_scores": True}})
    assert cfg.system.detector == "cnn" and cfg.gate.expose_scores
    with pytest.raises(ValueError, match="system.model and gate.model are both set"):
        parse_gate_config({"system": {"model": "a"}, "gate": {"model": "b"}})
    with pytest.raises(ValueError, match="unknown key system.colour"):
        parse_system({"colour": "rgb"})
    with pytest.raises(ValueError, match="system.threshold must be a number"):
        parse_system({"threshold": "high"})
    with pytest.raises(ValueError, match="unknown detector 'sift'"):
        parse_system({"detector": "sift"})


def test_audit_reads_the_same_system_section() -> None:
    from facerobust.eval.config import parse_config

    cfg = parse_config({"system": {"model": "dlib-resnet", "detector": "hog"}})
    assert cfg.models.victim == "dlib-resnet" and cfg.data.detector == "hog"
    with pytest.raises(ValueError, match="system.model and models.victim are both set"):
        parse_config({"system": {"model": "a"}, "models": {"victim": "b"}})
    with pytest.raises(ValueError, match="system.defense is not used by the audit"):
        parse_config({"system": {"defense": "jpeg:q=75"}})
