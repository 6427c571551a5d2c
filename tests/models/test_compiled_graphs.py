"""Compiled graphs equal their interpreter (outputs and input gradients): on the synthetic
TF.js graph, on small TFLite graphs, and on the three zoo models with real LFW chips."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from facerobust import models
from facerobust.models import zoo
from facerobust.models.graph_fold import fold
from facerobust.models.graph_module import CompiledGraph, CompileOptions
from facerobust.models.tfjs import TFGraph
from facerobust.models.tfjs.compiled import compile_tfjs, lower_tfjs
from facerobust.models.tflite import Operator, TFLiteGraph
from facerobust.models.tflite_compiled import compile_tflite, lower_tflite
from tests.models.test_tfjs_interpreter import _conv, synthetic_graph

ZOO = ["mobilefacenet", "mobileface", "faceres"]


def _first(out: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
    return out[0] if isinstance(out, list) else out


def _grad(net: torch.nn.Module, x: torch.Tensor, index: int = 0) -> torch.Tensor:
    xg = x.clone().requires_grad_(True)
    out = net(xg)
    (out[index] if isinstance(out, list) else out).pow(2).sum().backward()
    assert xg.grad is not None
    return xg.grad


@pytest.mark.parametrize("channels_last", [True, False])
def test_synthetic_graph_compiles_to_the_interpreters_values_and_gradients(
        channels_last: bool) -> None:
    rng = np.random.default_rng(0)
    nodes, w = synthetic_graph(rng)
    graph = TFGraph(nodes, w, outputs=["l2", "sm", "sg"])
    fast = compile_tfjs(graph, (9, 9, 3), CompileOptions(channels_last=channels_last))
    x = torch.from_numpy(rng.normal(size=(3, 9, 9, 3)).astype(np.float32))
    for ours, ref in zip(fast(x), graph(x), strict=True):
        assert ours.shape == ref.shape
        assert float((ours - ref).abs().max()) <= 1e-5
    for index in range(3):
        assert torch.allclose(_grad(fast, x, index), _grad(graph, x, index), atol=1e-5)


def test_every_constant_moves_with_to() -> None:
    # float64 stands in for a device: a constant captured outside a buffer would stay float32
    rng = np.random.default_rng(4)
    nodes, w = synthetic_graph(rng)
    graph = TFGraph(nodes, w, outputs=["l2", "sm", "sg"]).to(torch.float64)
    fast = compile_tfjs(TFGraph(nodes, w, outputs=["l2", "sm", "sg"]), (9, 9, 3))
    fast = fast.to(torch.float64)
    x = torch.from_numpy(rng.normal(size=(2, 9, 9, 3)))
    for ours, ref in zip(fast(x), graph(x), strict=True):
        assert ours.dtype == torch.float64
        assert torch.allclose(ours, ref, atol=1e-12)
    if torch.cuda.is_available():
        on_gpu = fast.to("cuda")(x.cuda())
        assert all(o.is_cuda for o in on_gpu)


def test_a_compiled_graph_pickles() -> None:
    # Ray ships models pickled; the fallback steps (Softmax, Sum, ...) must survive it too
    rng = np.random.default_rng(5)
    nodes, w = synthetic_graph(rng)
    fast = compile_tfjs(TFGraph(nodes, w, outputs=["l2", "sm", "sg"]), (9, 9, 3))
    x = torch.from_numpy(rng.normal(size=(2, 9, 9, 3)).astype(np.float32))
    copy = pickle.loads(pickle.dumps(fast))
    for a, b in zip(copy(x), fast(x), strict=True):
        assert torch.equal(a, b)


def _bn_relu6_graph(rng: np.random.Generator) -> TFGraph:
    """conv -> mul -> add -> relu -> min 6 -> max 0 (a Keras MobileNet block as exported)."""
    w = {"w": rng.normal(size=(3, 3, 3, 4)).astype(np.float32),
         "scale": rng.random(4).astype(np.float32) + 0.5,
         "shift": rng.normal(size=4).astype(np.float32),
         "six": np.array(6.0, np.float32), "zero": np.array(0.0, np.float32)}
    nodes = [{"name": "x", "op": "Placeholder"}, *({"name": k, "op": "Const"} for k in w),
             _conv("c", "x", "w", stride=2),
             {"name": "m", "op": "Mul", "input": ["c", "scale"]},
             {"name": "a", "op": "Add", "input": ["m", "shift"]},
             {"name": "r", "op": "Relu", "input": ["a"]},
             {"name": "lo", "op": "Minimum", "input": ["r", "six"]},
             {"name": "y", "op": "Maximum", "input": ["lo", "zero"]}]
    return TFGraph(nodes, w, outputs=["y"])


def test_batch_norm_and_relu6_fold_into_one_convolution() -> None:
    graph = _bn_relu6_graph(np.random.default_rng(1))
    steps = fold(lower_tfjs(graph, (8, 8, 3))).steps
    assert [s.kind for s in steps] == ["conv"]
    act = steps[0].attrs["act"]
    assert (act.kind, act.lo, act.hi) == ("clamp", 0.0, 6.0)
    assert steps[0].attrs["bias"] is not None
    x = torch.rand(2, 8, 8, 3) * 4
    assert torch.allclose(compile_tfjs(graph, (8, 8, 3))(x)[0], graph(x)[0], atol=1e-5)


def _prelu_tflite(rng: np.random.Generator) -> TFLiteGraph:
    """conv, then MobileFaceNet's PReLU spelling relu(x) + c * (x - |x|), then a residual."""
    conv = {"padding": "SAME", "stride": (1, 1), "dilation": (1, 1), "activation": "NONE"}
    none = {"activation": "NONE"}
    ops = [Operator(0, "CONV_2D", (0, 1, 2), (3,), conv),
           Operator(1, "RELU", (3,), (4,), {}),
           Operator(2, "ABS", (3,), (5,), {}),
           Operator(3, "SUB", (3, 5), (6,), none),
           Operator(4, "MUL", (7, 6), (8,), none),
           Operator(5, "ADD", (4, 8), (9,), none),
           Operator(6, "ADD", (9, 0), (10,), {"activation": "RELU"})]
    consts = {1: rng.normal(size=(3, 3, 3, 3)).astype(np.float32),
              2: rng.normal(size=3).astype(np.float32),
              7: (rng.random(3) * 0.2).astype(np.float32)}
    return TFLiteGraph(ops, consts, 0, 10)


def test_tflite_prelu_spelling_becomes_one_fused_convolution() -> None:
    graph = _prelu_tflite(np.random.default_rng(2))
    steps = fold(lower_tflite(graph, (6, 6, 3))).steps
    assert [s.kind for s in steps] == ["conv", "binary", "act"]
    assert steps[0].attrs["act"].kind == "prelu"
    fast = compile_tflite(graph, (6, 6, 3))
    x = torch.randn(4, 6, 6, 3)
    assert float((fast(x) - graph(x)).abs().max()) <= 1e-5
    assert torch.allclose(_grad(fast, x), _grad(graph, x), atol=1e-5)


def test_tensorflow_same_padding_survives_compilation() -> None:
    # 4x4 input, k3, stride 2, SAME: TF pads 0 before and 1 after (asymmetric)
    w = np.zeros((3, 3, 1, 1), np.float32)
    w[0, 0, 0, 0] = 1.0
    nodes = [{"name": "x", "op": "Placeholder"}, {"name": "w", "op": "Const"},
             _conv("c", "x", "w", stride=2)]
    fast = compile_tfjs(TFGraph(nodes, {"w": w}, outputs=["c"]), (4, 4, 1))
    y = fast(torch.arange(16, dtype=torch.float32).view(1, 4, 4, 1))[0]
    assert y.flatten().tolist() == [0.0, 2.0, 8.0, 10.0]


def test_wrong_input_shape_is_refused_naming_the_compiled_shape() -> None:
    fast = compile_tfjs(_bn_relu6_graph(np.random.default_rng(3)), (8, 8, 3))
    with pytest.raises(ValueError, match=r"NHWC input of shape \(N, \*\(8, 8, 3\)\)"):
        fast(torch.rand(1, 9, 9, 3))


def test_a_graph_without_a_dynamic_output_is_refused() -> None:
    nodes = [{"name": "x", "op": "Placeholder"}, {"name": "a", "op": "Const"},
             {"name": "y", "op": "Square", "input": ["a"]},
             {"name": "s", "op": "Mean", "input": ["x", "ax"], "attr": {}},
             {"name": "ax", "op": "Const"}]
    graph = TFGraph(nodes, {"a": np.ones(2, np.float32), "ax": np.array([1, 2])},
                    outputs=["y"])
    with pytest.raises(ValueError, match=r"output 'y' does not depend on the input"):
        compile_tfjs(graph, (4, 4, 1))


def test_unsupported_reduction_order_runs_as_a_fallback() -> None:
    # Mean over H only: NHWC gives (N, W, C), NCHW would give (N, C, W)
    nodes = [{"name": "x", "op": "Placeholder"}, {"name": "ax", "op": "Const"},
             {"name": "m", "op": "Mean", "input": ["x", "ax"],
              "attr": {"keep_dims": {"b": False}}}]
    graph = TFGraph(nodes, {"ax": np.array([1])}, outputs=["m"])
    assert [s.kind for s in lower_tfjs(graph, (5, 4, 3)).steps] == ["fallback"]
    x = torch.rand(2, 5, 4, 3)
    assert torch.equal(compile_tfjs(graph, (5, 4, 3))(x)[0], graph(x)[0])


def _zoo_or_skip(name: str) -> tuple[zoo.TFJSFaceModel, zoo.TFJSFaceModel]:
    if zoo.graph_path(name) is None:
        pytest.skip(f"{name} weights not fetched (run `facerobust models fetch {name}`)")
    return zoo.build(name), zoo.build(name, compiled=False)


def _lfw_color_chips(root: Path, count: int) -> torch.Tensor:
    import cv2

    from facerobust.data.align import align_face

    chips = []
    for person in sorted((root / "images").iterdir()):
        for path in sorted(person.glob("*.jpg"))[:1]:
            rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            chip = align_face(rgb)
            if chip is not None:
                chips.append(chip)
        if len(chips) == count:
            break
    return torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float() / 255.0


@pytest.mark.parametrize("name", ZOO)
def test_zoo_loads_the_compiled_graph_and_keeps_the_interpreter(name: str) -> None:
    fast, oracle = _zoo_or_skip(name)
    assert isinstance(fast.graph, CompiledGraph)
    assert not isinstance(oracle.graph, CompiledGraph)
    assert fast.graph.output_names == oracle.graph.output_names == [fast.entry.output]
    loaded = models.load(name, compiled=False)  # the registry passes the flag through
    assert isinstance(loaded, zoo.TFJSFaceModel) and isinstance(loaded.graph, type(oracle.graph))
    assert not list(fast.parameters())  # constants are buffers: backward is input-only


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("name", ZOO)
def test_compiled_zoo_model_equals_the_interpreter_on_lfw_chips(
        name: str, data_root: Path) -> None:
    fast, oracle = _zoo_or_skip(name)
    x = _lfw_color_chips(data_root / "lfw-color", 4)
    with torch.no_grad():
        ours, ref = fast(x), oracle(x)
    assert ours.shape == ref.shape == (4, fast.embedding_dim)
    assert float((ours - ref).abs().max()) <= 1e-5
    # folded batch-norm scales round differently: a unit sitting on a ReLU6 kink may flip,
    # which moves single gradient entries (faceres) but not the gradient as a whole
    g_ours, g_ref = _grad(fast, x).flatten(1), _grad(oracle, x).flatten(1)
    assert float(((g_ours - g_ref).norm(dim=1) / g_ref.norm(dim=1)).max()) <= 1e-2
    assert float(torch.nn.functional.cosine_similarity(g_ours, g_ref).min()) >= 0.9999


@pytest.mark.slow
@pytest.mark.data
def test_unfolded_scales_give_the_interpreters_exact_outputs(data_root: Path) -> None:
    _, oracle = _zoo_or_skip("faceres")
    graph = oracle.graph
    assert isinstance(graph, TFGraph)
    exact = compile_tfjs(graph, (224, 224, 3), CompileOptions(fold_scales=False))
    x = oracle.network_input(_lfw_color_chips(data_root / "lfw-color", 2))
    with torch.no_grad():
        assert torch.equal(exact(x)[0], graph(x)[0])
    # the input gradient of a stride-2 conv with TF's uneven padding sums in another order
    # (a zero tap instead of a padded copy), so it agrees to float rounding, not bit for bit
    g_exact, g_ref = _grad(exact, x), _grad(graph, x)
    assert float((g_exact - g_ref).abs().max()) <= 1e-5 * float(g_ref.abs().max())
