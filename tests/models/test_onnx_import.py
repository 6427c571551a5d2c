"""Our ONNX -> torch converter against onnxruntime and the exported torch network, and the
spec model's preprocessing (ArcFace template, BGR, (x - 127.5) / 128) on a tiny seeded net."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facerobust import models
from facerobust.models.spec_model import SpecModel
from facerobust.models.zoo_geometry import ChipWarp, arcface_similarity
from tests.helpers.exported import TinyArcFace, export_onnx, export_torchscript, write_spec

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from facerobust.models.onnx_import import import_onnx, onnxruntime_outputs  # noqa: E402

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[TinyArcFace, Path, Path]:
    folder = tmp_path_factory.mktemp("tiny")
    net = TinyArcFace().eval()
    example = torch.rand(2, 3, 112, 112)
    return (net, export_onnx(net, example, folder / "tiny.onnx"),
            export_torchscript(net, example, folder / "tiny.pt"))


def test_import_equals_onnxruntime_and_torch(tiny: tuple[TinyArcFace, Path, Path]) -> None:
    net, onnx_file, _ = tiny
    ops = {n.op_type for n in onnx.load(str(onnx_file)).graph.node}
    assert {"Conv", "BatchNormalization", "PRelu", "Gemm", "MaxPool", "AveragePool", "Pad",
            "ReduceL2", "Concat", "Shape"} <= ops  # the patterns the converter must handle
    x = torch.rand(3, 3, 112, 112) * 4 - 2  # another batch size than the export's
    imported = import_onnx(onnx_file)
    with torch.no_grad():
        ours = imported(x)
        ref = net(x)
    ort = onnxruntime_outputs(onnx_file, x.numpy())
    assert float(np.abs(ours.numpy() - ort).max()) <= TOLERANCE
    assert float((ours - ref).abs().max()) <= TOLERANCE
    assert imported.input_shape == (None, 3, 112, 112)


def test_spec_model_applies_template_colour_and_scale(
        tiny: tuple[TinyArcFace, Path, Path], tmp_path: Path) -> None:
    net, onnx_file, ts_file = tiny
    chips = torch.rand(2, 3, 150, 150, generator=torch.Generator().manual_seed(1))
    warp = ChipWarp(arcface_similarity(112), (112, 112))
    with torch.no_grad():
        expected = net((warp(chips).flip(1) * 255.0 - 127.5) / 128.0)
    for fmt, file in (("onnx", onnx_file), ("torchscript", ts_file)):
        spec = write_spec(tmp_path / f"{fmt}.toml",
                          model=f'name = "tiny-{fmt}"\nformat = "{fmt}"\nfile = "{file}"')
        model = models.load(str(spec))
        assert isinstance(model, SpecModel)
        assert (model.name, model.embedding_dim, model.metric, model.threshold) == \
            (f"tiny-{fmt}", 16, "cosine", 0.5)
        with torch.no_grad():
            assert float((model(chips) - expected).abs().max()) <= TOLERANCE


def test_gradients_reach_the_chip(tiny: tuple[TinyArcFace, Path, Path], tmp_path: Path) -> None:
    _, onnx_file, _ = tiny
    spec = write_spec(tmp_path / "g.toml",
                      model=f'name = "tiny"\nformat = "onnx"\nfile = "{onnx_file}"')
    model = models.load(str(spec))
    x = torch.rand(1, 3, 150, 150, requires_grad=True)
    model.distance(model(x), model(torch.rand(1, 3, 150, 150))).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_unsupported_op_names_the_op_and_the_node(tmp_path: Path) -> None:
    h = onnx.helper
    graph = h.make_graph(
        [h.make_node("Relu", ["x"], ["r"], name="act"),
         h.make_node("Erf", ["r"], ["y"], name="my_erf")], "g",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 112, 112])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 112, 112])])
    path = tmp_path / "erf.onnx"
    onnx.save(h.make_model(graph), str(path))
    with pytest.raises(ValueError, match=r"unsupported ONNX op 'Erf' in node 'my_erf'"):
        import_onnx(path)
    spec = write_spec(tmp_path / "erf.toml",
                      model=f'name = "erf"\nformat = "onnx"\nfile = "{path}"')
    with pytest.raises(ValueError, match=r"Erf"):
        models.load(str(spec))


class ChannelsLast(torch.nn.Module):
    """A TF-style network: NHWC input."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = torch.nn.Conv2d(3, 4, 5, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.permute(0, 3, 1, 2)).flatten(1)


def test_nhwc_layout_and_the_custom_template(tmp_path: Path) -> None:
    net = ChannelsLast().eval()
    file = export_onnx(net, torch.rand(1, 112, 112, 3), tmp_path / "nhwc.onnx")
    arcface = [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
               [41.5493, 92.3655], [70.7299, 92.2041]]
    chips = torch.rand(2, 3, 150, 150)
    outs = []
    for template in ('template = "arcface-112"', f'template = "custom"\nlandmarks = {arcface}'):
        spec = write_spec(tmp_path / "nhwc.toml",
                          model=f'name = "nhwc"\nformat = "onnx"\nfile = "{file}"',
                          input=f'[input]\nsize = 112\n{template}\nlayout = "nhwc"\n')
        with torch.no_grad():
            outs.append(models.load(str(spec))(chips))
    warp = ChipWarp(arcface_similarity(112), (112, 112))
    with torch.no_grad():
        expected = net((warp(chips) * 255.0).permute(0, 2, 3, 1))
    assert float((outs[0] - expected).abs().max()) <= TOLERANCE * float(expected.abs().max())
    assert float((outs[1] - outs[0]).abs().max()) <= TOLERANCE * float(expected.abs().max())
