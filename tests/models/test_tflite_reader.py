"""The TFLite reader: checked against LiteRT on the real MobileFaceNet flatbuffer; bad files
and unsupported operators fail at load time naming the file or operator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facerobust.models.tflite import Operator, TFLiteGraph, load_tflite


def _mobilefacenet() -> Path:
    from facerobust.models.zoo import graph_path

    path = graph_path("mobilefacenet")
    if path is None:
        pytest.skip("mobilefacenet not fetched (run `facerobust models fetch mobilefacenet`)")
    return path


def test_mobilefacenet_matches_litert() -> None:
    interpreter_mod = pytest.importorskip("ai_edge_litert.interpreter")
    path = _mobilefacenet()
    reference = interpreter_mod.Interpreter(model_path=str(path))
    reference.allocate_tensors()
    inp, out = reference.get_input_details()[0], reference.get_output_details()[0]
    batch = int(inp["shape"][0])
    x = (np.random.default_rng(0).random((batch, 112, 112, 3)) * 2 - 1).astype(np.float32)
    reference.set_tensor(inp["index"], x)
    reference.invoke()
    expected = reference.get_tensor(out["index"])
    with torch.no_grad():
        ours = load_tflite(path)(torch.from_numpy(x)).numpy()
    assert ours.shape == expected.shape == (batch, 192)
    assert np.abs(ours - expected).max() <= 1e-4 * np.abs(expected).max()


def test_mobilefacenet_is_differentiable_and_batch_free() -> None:
    graph = load_tflite(_mobilefacenet())
    x = torch.rand(3, 112, 112, 3, requires_grad=True)
    graph(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert graph.output_names == ["embeddings"]


def test_not_a_flatbuffer_is_refused_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match=r"model\.tflite: not a TFLite flatbuffer"):
        load_tflite(bad)


def test_unsupported_operator_is_named_at_build_time() -> None:
    ops = [Operator(index=0, op="LSTM", inputs=(0,), outputs=(1,), options={})]
    with pytest.raises(ValueError, match=r"operator 0: LSTM is not supported"):
        TFLiteGraph(ops, {}, 0, 1)


def test_conv_padding_and_fused_activation_follow_tflite() -> None:
    # one 3x3 stride-2 SAME conv with a fused RELU6 on a 5x5 input: TF pads 1 before, 1 after
    w = np.ones((1, 3, 3, 1), dtype=np.float32)
    op = Operator(0, "CONV_2D", (0, 1, -1), (2,),
                  {"padding": "SAME", "stride": (2, 2), "dilation": (1, 1),
                   "activation": "RELU6"})
    graph = TFLiteGraph([op], {1: w}, 0, 2)
    x = torch.ones(1, 5, 5, 1)
    y = graph(x)
    assert y.shape == (1, 3, 3, 1)
    assert float(y[0, 0, 0, 0]) == 4.0  # corner: a 2x2 window inside the image
    assert float(y[0, 1, 1, 0]) == 6.0  # centre: 9 clipped to 6 by RELU6
