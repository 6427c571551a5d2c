"""Zoo geometry (canonical chip -> model input) and the zoo models under the FaceModel contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facerobust import models
from facerobust.models.zoo_geometry import (
    ARCFACE_112,
    ChipWarp,
    arcface_similarity,
    box_similarity,
    canonical_five_points,
    fit_similarity,
)


def test_fit_similarity_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(0)
    src = rng.random((5, 2)) * 100
    ang, s, t = 0.3, 1.7, np.array([5.0, -3.0])
    rot = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    mat = fit_similarity(src, src @ rot.T + t)
    assert np.allclose(mat[:, :2], rot) and np.allclose(mat[:, 2], t)


def test_arcface_template_fit_is_close() -> None:
    pts = canonical_five_points()
    mapped = np.c_[pts, np.ones(5)] @ arcface_similarity(112).T
    assert np.abs(mapped - ARCFACE_112).max() < 3.0  # two templates, few-pixel disagreement


@pytest.mark.parametrize("mat_fn", [lambda: arcface_similarity(112),
                                    lambda: box_similarity((0, 0, 150, 150), 112)])
def test_warp_moves_a_dot_where_the_matrix_says(mat_fn) -> None:
    mat = mat_fn()
    x = torch.zeros(1, 3, 150, 150)
    cx, cy = 60, 80
    x[:, :, cy - 1: cy + 2, cx - 1: cx + 2] = 1.0
    out = ChipWarp(mat, (112, 112))(x)[0, 0]
    iy, ix = np.unravel_index(int(out.argmax()), out.shape)
    ex, ey = mat @ np.array([cx, cy, 1.0])
    assert abs(ix - ex) <= 1.0 and abs(iy - ey) <= 1.0


def test_identity_box_warp_is_exact() -> None:
    x = torch.rand(2, 3, 150, 150)
    out = ChipWarp(box_similarity((0, 0, 150, 150), 150), (150, 150))(x)
    assert torch.allclose(out, x, atol=1e-4)  # float32 grid rounding only


def _load_or_skip(name: str) -> models.FaceModel:
    if models.weights_path(name) is None:
        pytest.skip(f"{name} weights not fetched (run `facerobust models fetch all`)")
    return models.load(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilefacenet", "mobileface", "faceres", "dlib-resnet-q8"])
def test_zoo_model_contract_and_gradients(name: str) -> None:
    net = _load_or_skip(name)
    assert net.name == name and net.input_size == (150, 150)
    torch.manual_seed(0)
    x = torch.rand(2, 3, 150, 150, requires_grad=True)
    out = net(x)
    assert out.shape == (2, net.embedding_dim)
    d = net.distance(out[:1], out[1:])
    assert d.shape == (1,) and float(d) > 0
    out.pow(2).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    with pytest.raises(ValueError):
        net(torch.rand(1, 3, 112, 112))


@pytest.mark.slow
def test_quantised_dlib_stays_close_to_the_exact_port() -> None:
    q8 = _load_or_skip("dlib-resnet-q8")
    exact = models.load("dlib-resnet")
    torch.manual_seed(1)
    x = torch.rand(3, 3, 150, 150)
    with torch.no_grad():
        a, b = exact(x), q8(x)
    # quantisation error is small against dlib's 0.6 decision threshold but not zero
    err = (a - b).norm(dim=1)
    assert float(err.max()) < 0.15 and float(err.min()) > 0.0
