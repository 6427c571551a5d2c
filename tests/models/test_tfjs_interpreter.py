"""TF.js graph interpreter and weights-manifest reader on small synthetic graphs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facerobust.models.tfjs import TFGraph, load_graph_model, read_manifest
from facerobust.models.tfjs.weights import decode_weight


def _s(text: str) -> dict[str, str]:
    return {"s": base64.b64encode(text.encode()).decode()}


def _ints(values: list[int]) -> dict[str, dict[str, list[str]]]:
    return {"list": {"i": [str(v) for v in values]}}


def _conv(name: str, x: str, w: str, *, op: str = "Conv2D", stride: int = 1,
          padding: str = "SAME", extra: list[str] | None = None,
          fused: list[str] | None = None) -> dict:
    attr = {"strides": _ints([1, stride, stride, 1]), "padding": _s(padding),
            "data_format": _s("NHWC"), "dilations": _ints([1, 1, 1, 1])}
    if fused is not None:
        attr["fused_ops"] = {"list": {"s": [_s(f)["s"] for f in fused]}}
        attr["num_args"] = {"i": str(len(extra or []))}
    return {"name": name, "op": op, "input": [x, w, *(extra or [])], "attr": attr}


def synthetic_graph(rng: np.random.Generator) -> tuple[list[dict], dict[str, np.ndarray]]:
    """A small net touching most supported ops (NHWC input 1x9x9x3)."""
    w = {
        "w1": rng.normal(size=(3, 3, 3, 4)).astype(np.float32),
        "b1": rng.normal(size=4).astype(np.float32),
        "alpha": np.abs(rng.normal(size=4)).astype(np.float32) * 0.2,
        "dw": rng.normal(size=(3, 3, 4, 2)).astype(np.float32),
        "b2": rng.normal(size=8).astype(np.float32),
        "pads": np.array([[0, 0], [1, 2], [2, 1], [0, 0]], dtype=np.int64),
        "axes": np.array([1, 2], dtype=np.int64),
        "fc": rng.normal(size=(8, 5)).astype(np.float32),
        "fcb": rng.normal(size=5).astype(np.float32),
        "half": np.array(0.5, dtype=np.float32),
        "eps": np.array(1e-6, dtype=np.float32),
        "sumax": np.array([1], dtype=np.int64),
    }
    nodes = [{"name": "x", "op": "Placeholder"}]
    nodes += [{"name": k, "op": "Const"} for k in w]
    nodes += [
        _conv("c1", "x", "w1", op="_FusedConv2D", stride=2, extra=["b1", "alpha"],
              fused=["BiasAdd", "Prelu"]),
        {"name": "p", "op": "Pad", "input": ["c1", "pads"]},
        _conv("d1", "p", "dw", op="DepthwiseConv2dNative", padding="VALID"),
        {"name": "ba", "op": "BiasAdd", "input": ["d1", "b2"]},
        {"name": "r", "op": "Relu", "input": ["ba"]},
        {"name": "mx", "op": "Maximum", "input": ["r", "half"]},
        {"name": "mn", "op": "Minimum", "input": ["mx", "ba"]},
        {"name": "ab", "op": "Abs", "input": ["mn"]},
        {"name": "mean", "op": "Mean", "input": ["ab", "axes"],
         "attr": {"keep_dims": {"b": False}}},
        {"name": "fc1", "op": "_FusedMatMul", "input": ["mean", "fc", "fcb"],
         "attr": {"fused_ops": {"list": {"s": [_s("BiasAdd")["s"]]}}, "num_args": {"i": "1"},
                  "transpose_a": {"b": False}, "transpose_b": {"b": False}}},
        {"name": "sq", "op": "Square", "input": ["fc1"]},
        {"name": "ss", "op": "Sum", "input": ["sq", "sumax"], "attr": {"keep_dims": {"b": True}}},
        {"name": "ssm", "op": "AddV2", "input": ["ss", "eps"]},
        {"name": "rs", "op": "Rsqrt", "input": ["ssm"]},
        {"name": "l2", "op": "Mul", "input": ["fc1", "rs"]},
        {"name": "sm", "op": "Softmax", "input": ["fc1"]},
        {"name": "sg", "op": "Sigmoid", "input": ["fc1"]},
    ]
    return nodes, w


def torch_reference(x: torch.Tensor, w: dict[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
    """The same computation written directly with NCHW torch ops and TF SAME arithmetic."""
    t = {k: torch.from_numpy(v) for k, v in w.items()}
    xn = x.permute(0, 3, 1, 2)
    xn = F.pad(xn, (1, 1, 1, 1))  # SAME, 9x9, k3, s2: total 2 -> 1/1
    y = F.conv2d(xn, t["w1"].permute(3, 2, 0, 1), stride=2) + t["b1"].view(1, -1, 1, 1)
    y = torch.where(y < 0, t["alpha"].view(1, -1, 1, 1) * y, y)
    y = F.pad(y, (2, 1, 1, 2))
    dw = t["dw"].permute(2, 3, 0, 1).reshape(8, 1, 3, 3)
    d = F.conv2d(y, dw, groups=4) + t["b2"].view(1, -1, 1, 1)
    m = torch.minimum(torch.maximum(F.relu(d), torch.tensor(0.5)), d).abs().mean(dim=(2, 3))
    fc = m @ t["fc"] + t["fcb"]
    l2 = fc / torch.sqrt((fc**2).sum(1, keepdim=True) + 1e-6)
    return l2, torch.softmax(fc, 1), torch.sigmoid(fc)


def test_graph_matches_direct_torch_and_is_differentiable() -> None:
    rng = np.random.default_rng(0)
    nodes, w = synthetic_graph(rng)
    g = TFGraph(nodes, w, outputs=["l2", "sm", "sg"])
    x = torch.from_numpy(rng.normal(size=(2, 9, 9, 3)).astype(np.float32)).requires_grad_(True)
    out = g(x)
    ref = torch_reference(x.detach(), w)
    for o, r in zip(out, ref, strict=True):
        assert o.shape == r.shape
        assert torch.allclose(o, r, atol=1e-5)
    out[0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_same_padding_follows_tensorflow_for_even_inputs() -> None:
    # 4x4 input, k3, stride 2, SAME: TF pads 0 before and 1 after (not 1/1 as torch would).
    x = torch.arange(16, dtype=torch.float32).view(1, 4, 4, 1)
    w = np.zeros((3, 3, 1, 1), np.float32)
    w[0, 0, 0, 0] = 1.0  # picks the top-left tap of each window
    nodes = [{"name": "x", "op": "Placeholder"}, {"name": "w", "op": "Const"},
             _conv("c", "x", "w", stride=2)]
    y = TFGraph(nodes, {"w": w}, outputs=["c"])(x)[0]
    assert y.shape == (1, 2, 2, 1)
    assert y.flatten().tolist() == [0.0, 2.0, 8.0, 10.0]


def test_relu6_as_maximum_minimum_gives_tf_tie_gradients() -> None:
    # relu6 = Minimum(Maximum(x, 0), 6): values as TF; at a tie TF passes the whole gradient
    # to x (its MaximumGrad/MinimumGrad use >= / <=), not half as torch.maximum does.
    nodes = [{"name": "x", "op": "Placeholder"}, {"name": "zero", "op": "Const"},
             {"name": "six", "op": "Const"},
             {"name": "mx", "op": "Maximum", "input": ["x", "zero"]},
             {"name": "mn", "op": "Minimum", "input": ["mx", "six"]}]
    consts = {"zero": np.array(0.0, np.float32), "six": np.array(6.0, np.float32)}
    x = torch.tensor([[-1.0, 0.0, 3.0, 6.0, 7.0]], requires_grad=True)
    y = TFGraph(nodes, consts, outputs=["mn"])(x)[0]
    assert y.tolist() == [[0.0, 0.0, 3.0, 6.0, 6.0]]
    y.sum().backward()
    assert x.grad is not None and x.grad.tolist() == [[0.0, 1.0, 1.0, 1.0, 0.0]]


def test_pointwise_conv_matches_conv2d() -> None:
    rng = np.random.default_rng(4)
    w = rng.normal(size=(1, 1, 5, 7)).astype(np.float32)
    nodes = [{"name": "x", "op": "Placeholder"}, {"name": "w", "op": "Const"},
             _conv("c", "x", "w")]
    x = torch.from_numpy(rng.normal(size=(2, 4, 4, 5)).astype(np.float32))
    y = TFGraph(nodes, {"w": w}, outputs=["c"])(x)[0]
    ref = F.conv2d(x.permute(0, 3, 1, 2), torch.from_numpy(w).permute(3, 2, 0, 1))
    assert torch.allclose(y, ref.permute(0, 2, 3, 1), atol=1e-5)


def test_unknown_op_is_named() -> None:
    nodes = [{"name": "x", "op": "Placeholder"},
             {"name": "weird", "op": "FancyNewOp", "input": ["x"]}]
    with pytest.raises(ValueError, match="FancyNewOp"):
        TFGraph(nodes, {}, outputs=["weird"])


def test_unknown_fused_op_is_named() -> None:
    nodes = [{"name": "x", "op": "Placeholder"}, {"name": "w", "op": "Const"},
             {"name": "b", "op": "Const"},
             _conv("c", "x", "w", op="_FusedConv2D", extra=["b"], fused=["BiasAdd", "Swish"])]
    g = TFGraph(nodes, {"w": np.ones((1, 1, 1, 1), np.float32), "b": np.zeros(1, np.float32)},
                outputs=["c"])
    with pytest.raises(ValueError, match="Swish"):
        g(torch.ones(1, 2, 2, 1))


def test_decode_quantised_weights() -> None:
    q = np.array([0, 1, 255], dtype=np.uint8)
    entry = {"name": "a", "shape": [3], "dtype": "float32",
             "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}}
    assert decode_weight(entry, q.tobytes()).tolist() == [-1.0, -0.5, 126.5]
    half = np.array([1.5, -2.25], dtype="<f2")
    entry = {"name": "h", "shape": [2], "dtype": "float32", "quantization": {"dtype": "float16"}}
    out = decode_weight(entry, half.tobytes())
    assert out.dtype == np.float32 and out.tolist() == [1.5, -2.25]


def test_read_manifest_splits_shards_and_checks_sizes(tmp_path: Path) -> None:
    a = np.arange(6, dtype="<f4").reshape(2, 3)
    b = np.array([7, -8], dtype="<i4")
    blob = a.tobytes() + b.tobytes()
    (tmp_path / "s1.bin").write_bytes(blob[:10])
    (tmp_path / "s2.bin").write_bytes(blob[10:])
    manifest = [{"paths": ["s1.bin", "s2.bin"], "weights": [
        {"name": "a", "shape": [2, 3], "dtype": "float32"},
        {"name": "b", "shape": [2], "dtype": "int32"}]}]
    got = read_manifest(manifest, tmp_path)
    assert np.array_equal(got["a"], a) and got["b"].tolist() == [7, -8]
    (tmp_path / "s2.bin").write_bytes(blob[10:-4])
    with pytest.raises(ValueError, match="'b'"):
        read_manifest(manifest, tmp_path)


def test_load_graph_model_from_json(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    nodes, w = synthetic_graph(rng)
    write_graph_model(tmp_path / "m.json", nodes, w, outputs=["l2"])
    g = load_graph_model(tmp_path / "m.json")
    assert g.output_names == ["l2"]
    x = torch.from_numpy(rng.normal(size=(1, 9, 9, 3)).astype(np.float32))
    assert torch.allclose(g(x)[0], torch_reference(x, w)[0], atol=1e-5)


def write_graph_model(path: Path, nodes: list[dict], w: dict[str, np.ndarray],
                      *, outputs: list[str]) -> None:
    """Write a TF.js graph model (model.json + one shard), consts in the manifest."""
    specs, blobs = [], []
    for k, v in w.items():
        dtype = "int32" if v.dtype.kind == "i" else "float32"
        arr = v.astype("<i4" if dtype == "int32" else "<f4")
        specs.append({"name": k, "shape": list(v.shape), "dtype": dtype})
        blobs.append(arr.tobytes())
    shard = path.with_suffix(".bin")
    shard.write_bytes(b"".join(blobs))
    tf_nodes = []
    for n in nodes:
        n = dict(n)
        attr = dict(n.get("attr", {}))
        if n["op"] == "Const":
            dtype = "DT_INT32" if w[n["name"]].dtype.kind == "i" else "DT_FLOAT"
            attr["dtype"] = {"type": dtype}
            attr["value"] = {"tensor": {"dtype": dtype, "tensorShape": {
                "dim": [{"size": str(s)} for s in w[n["name"]].shape]}}}
        elif n["op"] == "Placeholder":
            attr["dtype"] = {"type": "DT_FLOAT"}
        else:
            attr.setdefault("T", {"type": "DT_FLOAT"})
        if n["op"] in ("Mean", "Sum"):
            attr["Tidx"] = {"type": "DT_INT32"}
        n["attr"] = attr
        tf_nodes.append(n)
    model = {"format": "graph-model", "generatedBy": "facerobust-test", "convertedBy": None,
             "signature": {"outputs": {o: {"name": o} for o in outputs}},
             "modelTopology": {"node": tf_nodes, "library": {}, "versions": {}},
             "weightsManifest": [{"paths": [shard.name], "weights": specs}]}
    path.write_text(json.dumps(model))


# --- against the real TensorFlow.js (pure-JS CPU backend in node) ---------------------------

def _oracle_or_skip() -> None:
    from facerobust.models.tfjs.oracle import oracle_available

    reason = oracle_available()
    if reason is not None:
        pytest.skip(f"TF.js oracle unavailable: {reason}")


def _rel_err(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(ours - ref).max() / max(float(np.abs(ref).max()), 1e-12))


@pytest.mark.slow
def test_synthetic_graph_matches_tfjs(tmp_path: Path) -> None:
    from facerobust.models.tfjs.oracle import run_oracle

    _oracle_or_skip()
    rng = np.random.default_rng(2)
    nodes, w = synthetic_graph(rng)
    outputs = ["l2", "sm", "sg"]
    write_graph_model(tmp_path / "m.json", nodes, w, outputs=outputs)
    x = rng.normal(size=(2, 9, 9, 3)).astype(np.float32)
    refs = run_oracle(tmp_path / "m.json", x, outputs)
    ours = load_graph_model(tmp_path / "m.json", outputs=outputs)(torch.from_numpy(x))
    for o, r in zip(ours, refs, strict=True):
        assert _rel_err(o.detach().numpy(), r) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobileface", "faceres"])
def test_real_graph_models_match_tfjs(name: str) -> None:
    from facerobust.models.tfjs.oracle import run_oracle
    from facerobust.models.zoo import ENTRIES, graph_path

    _oracle_or_skip()
    path = graph_path(name)
    if path is None:
        pytest.skip(f"{name} weights not fetched (run `facerobust models fetch all`)")
    g = load_graph_model(path)
    size = ENTRIES[name].net_size
    rng = np.random.default_rng(3)
    scale = ENTRIES[name].pixel_scale  # inputs span the range the network really sees
    x = (rng.random((2, size, size, 3)) * scale).astype(np.float32)
    refs = run_oracle(path, x, g.output_names)
    with torch.no_grad():
        ours = g(torch.from_numpy(x))
    for out_name, o, r in zip(g.output_names, ours, refs, strict=True):
        assert o.shape == r.shape, out_name
        assert _rel_err(o.numpy(), r) <= 1e-4, out_name
