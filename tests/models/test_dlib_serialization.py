"""The dlib .dat reader: a hand-encoded toy network (encoding written from dlib's
serialize.h rules) and the real packaged face-recognition file, plus corrupt inputs."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from facerobust.models.dlib_resnet import weights_file
from facerobust.models.dlib_serialization import DlibSerializationError, parse_dlib_net


def enc_int(value: int) -> bytes:
    """dlib pack_int: control byte (byte count | 0x80 if negative) + little-endian magnitude."""
    magnitude = abs(value)
    body = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def enc_str(text: str) -> bytes:
    return enc_int(len(text)) + text.encode()


def enc_float(mantissa: int, exponent: int) -> bytes:
    return enc_int(mantissa) + enc_int(exponent)


def enc_bool(flag: bool) -> bytes:
    return b"1" if flag else b"0"


def enc_tensor(array: np.ndarray) -> bytes:
    shape = (list(array.shape) + [1, 1, 1, 1])[:4]
    head = enc_int(2) + b"".join(enc_int(d) for d in shape)
    return head + array.astype("<f4").tobytes()


def enc_alias(*shape: int) -> bytes:
    return enc_int(1) + b"".join(enc_int(d) for d in shape)


EMPTY = np.zeros((0, 0, 0, 0), np.float32)


def bookkeeping() -> bytes:
    return enc_bool(True) + enc_bool(False) + enc_bool(False) + enc_tensor(EMPTY) * 2


def toy_network(weight: np.ndarray, bias: np.ndarray, fc: np.ndarray) -> bytes:
    """loss_metric_2 < fc_no_bias < tag1 < relu < con 2x3x3x3 < input_rgb_image_sized<150> >>>>>."""
    head = enc_int(1) + enc_str("loss_metric_2") + enc_float(5, -7) + enc_float(3, -2)
    head += enc_int(2) + enc_int(1) + enc_int(2)  # fc add_layer, tag, relu add_layer
    head += enc_int(2)  # bottom add_layer (with input layer)
    head += enc_str("input_rgb_image_sized")
    head += enc_float(61391, -9) + enc_float(-3, 0) + enc_float(0, 0) + enc_int(150) * 2
    con = enc_str("con_4") + enc_tensor(np.concatenate([weight.ravel(), bias]))
    con += enc_int(2) + enc_int(3) + enc_int(3) + enc_int(1) * 2 + enc_int(1) * 2
    con += enc_alias(2, 3, 3, 3) + enc_alias(1, 2, 1, 1) + enc_float(1, 0) * 3 + enc_float(0, 0)
    con += bookkeeping() + enc_tensor(EMPTY)  # grad_final of the input-side add_layer
    relu = enc_str("relu_") + bookkeeping() + enc_tensor(EMPTY)  # v2 add_layer: params_grad
    fcl = enc_str("fc_2") + enc_int(4) + enc_int(2) + enc_tensor(fc.ravel())
    fcl += enc_alias(2, 4, 1, 1) + enc_alias(1, 4, 1, 1) + enc_int(1) + enc_float(1, 0) * 4
    fcl += bookkeeping() + enc_tensor(EMPTY)
    return head + con + relu + fcl


@pytest.fixture()
def toy(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    arrays = {
        "weight": rng.normal(size=(2, 3, 3, 3)).astype(np.float32),
        "bias": np.array([0.5, -2.0], np.float32),
        "fc": rng.normal(size=(2, 4)).astype(np.float32),
    }
    path = tmp_path / "toy.dat"
    path.write_bytes(toy_network(arrays["weight"], arrays["bias"], arrays["fc"]))
    return path, arrays


def test_integer_encoding_matches_dlib_rules() -> None:
    assert enc_int(0) == b"\x01\x00"
    assert enc_int(-300) == bytes([0x82, 0x2C, 0x01])
    assert struct.unpack("<H", enc_int(300)[1:])[0] == 300


def test_toy_network_round_trip(toy: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, arrays = toy
    net = parse_dlib_net(path)
    assert net.loss == {"type": "loss_metric_2", "margin": 5 / 128, "dist_thresh": 0.75}
    assert net.input["avg_rgb"] == (61391 / 512, -3.0, 0.0)
    assert (net.input["nr"], net.input["nc"]) == (150, 150)
    assert net.wrapper_versions == (2, 1, 2)
    assert [layer.kind for layer in net.layers] == ["con", "relu", "fc"]
    con, _, fc = net.layers
    np.testing.assert_array_equal(con.params["weight"], arrays["weight"])
    np.testing.assert_array_equal(con.params["bias"], arrays["bias"])
    assert (con.config["stride_y"], con.config["padding_x"], con.config["num_filters"]) == (1, 1, 2)
    np.testing.assert_array_equal(fc.params["weight"], arrays["fc"])
    assert "bias" not in fc.params  # bias mode 1 = FC_NO_BIAS


@pytest.mark.parametrize("cut", [1, 20, 200, -3])
def test_truncated_file_raises_value_error_naming_it(toy, tmp_path: Path, cut: int) -> None:
    path, _ = toy
    data = path.read_bytes()
    bad = tmp_path / "truncated.dat"
    bad.write_bytes(data[:cut])
    with pytest.raises(ValueError, match="truncated.dat"):
        parse_dlib_net(bad)


def test_corrupt_and_missing_files_raise_value_error(toy, tmp_path: Path) -> None:
    path, _ = toy
    data = path.read_bytes()
    cases = {
        "wrong_loss.dat": data.replace(b"loss_metric_2", b"loss_mmod___2"),
        "wrong_layer.dat": data.replace(b"relu_", b"gelu_"),
        "bad_bool.dat": data.replace(b"100\x01\x02", b"x00\x01\x02", 1),
        "trailing.dat": data + b"\x05junk",
        "empty.dat": b"",
    }
    for name, payload in cases.items():
        bad = tmp_path / name
        bad.write_bytes(payload)
        with pytest.raises(DlibSerializationError, match=name):
            parse_dlib_net(bad)
    with pytest.raises(ValueError, match="nothing-here.dat"):
        parse_dlib_net(tmp_path / "nothing-here.dat")
    assert issubclass(DlibSerializationError, ValueError)


REAL = weights_file()
needs_real = pytest.mark.skipif(REAL is None, reason="face_recognition_models not installed")


@needs_real
def test_real_face_recognition_file_layout() -> None:
    net = parse_dlib_net(REAL)
    assert net.loss["type"] == "loss_metric_2"
    assert net.loss["dist_thresh"] == pytest.approx(0.6)
    np.testing.assert_allclose(net.input["avg_rgb"], (122.782, 117.001, 104.298), atol=1e-4)
    kinds = [layer.kind for layer in net.layers]
    assert len(kinds) == 108 and kinds[:4] == ["con", "affine", "relu", "max_pool"]
    assert kinds[-2:] == ["avg_pool", "fc"]
    assert net.layers[0].params["weight"].shape == (32, 3, 7, 7)
    assert net.layers[-1].params["weight"].shape == (256, 128)
    params = sum(v.size for layer in net.layers for v in layer.params.values())
    assert 5_000_000 < params < 6_000_000
    for layer in net.layers:
        for value in layer.params.values():
            assert np.isfinite(value).all()


@needs_real
def test_real_file_truncated_copy_raises(tmp_path: Path) -> None:
    bad = tmp_path / "cut_resnet.dat"
    bad.write_bytes(REAL.read_bytes()[: 5_000_000])
    with pytest.raises(ValueError, match="cut_resnet.dat.*truncated"):
        parse_dlib_net(bad)
