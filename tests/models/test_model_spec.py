"""Every bad model spec is a clear ValueError naming the file and the key, before any work."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from facerobust import models
from facerobust.models.spec_file import read_model_spec
from facerobust.service.config import parse_gate_config
from facerobust.system.spec import load_model, operating_threshold
from tests.helpers.exported import TinyArcFace, export_onnx, export_torchscript, write_spec

pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("specs")
    net, example = TinyArcFace().eval(), torch.rand(1, 3, 112, 112)
    return (export_onnx(net, example, folder / "net.onnx"),
            export_torchscript(net, example, folder / "net.pt"))


def onnx_model(file: Path, extra: str = "") -> str:
    return f'name = "net"\nformat = "onnx"\nfile = "{file}"\n{extra}'


def test_a_good_spec_parses_into_typed_sections(files: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    sha = hashlib.sha256(files[0].read_bytes()).hexdigest()
    spec = read_model_spec(write_spec(tmp_path / "ok.toml",
                                      model=onnx_model(files[0], f'sha256 = "{sha}"'),
                                      extra="[calibration]\nfar = 1e-2\ndata = 'faces'\n"))
    assert spec.input.mean == (127.5, 127.5, 127.5) and spec.input.size == 112
    assert spec.calibration is not None and spec.calibration.far == 1e-2
    assert spec.file_path() == files[0] and spec.card_path().name == "ok.card.json"


@pytest.mark.parametrize("model, input, output, match", [
    ('name = "n"\nformat = "onnx"\nfile = "missing.onnx"', None, None,
     r"model\.file .*missing\.onnx does not exist"),
    ("SHA", None, None, r"model\.file .*net\.onnx: sha256 .* differs from the pinned"),
    ('name = "n"\nformat = "onnx"\nfile = "x.onnx"\nfiles = 1', None, None,
     r"unknown key model\.files; allowed: name, format, file"),
    ('name = "n"\nformat = "keras"\nfile = "x"', None, None, r"model\.format must be one of"),
    ('format = "onnx"\nfile = "x"', None, None, r"missing key model\.name"),
    (None, '[input]\nsize = 112\ntemplate = "arcface-96"', None,
     r"input\.template must be one of dlib-chip, arcface-112"),
    (None, '[input]\nsize = 128\ntemplate = "arcface-112"', None,
     r"input\.size 128 does not fit input\.template 'arcface-112'"),
    (None, '[input]\nsize = 112\ntemplate = "custom"', None, r"input\.landmarks must be 5"),
    (None, '[input]\nsize = 112\ntemplate = "arcface-112"\nmean = [1, 2]', None,
     r"input\.mean must be 3 numbers"),
    (None, '[input]\nsize = 112\ntemplate = "arcface-112"\nscale = "255"', None,
     r"input\.scale must be a number"),
    (None, None, '[output]\nmetric = "l1"', r"output\.metric must be one of cosine"),
    (None, None, '[outputs]\nmetric = "cosine"', r"unknown table \[outputs\]"),
])
def test_bad_spec_is_refused_naming_the_file_and_key(
        files: tuple[Path, Path], tmp_path: Path, model: str | None, input: str | None,
        output: str | None, match: str) -> None:
    if model in (None, "SHA"):
        model = onnx_model(files[0], 'sha256 = "' + "0" * 64 + '"' if model else "")
    spec = write_spec(tmp_path / "bad.toml", model=model,
                      **({"input": input} if input else {}),
                      **({"output": output} if output else {}))
    with pytest.raises(ValueError, match=match) as err:
        models.load(str(spec))
    assert str(spec) in str(err.value)


def test_wrong_input_size_for_the_onnx_graph(files: tuple[Path, Path], tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "size.toml", model=onnx_model(files[0]),
                      input='[input]\nsize = 160\ntemplate = "facenet-160"')
    with pytest.raises(ValueError, match=r"input\.size 160 \(nchw\) does not match the ONNX "
                                         r"input 'x' of shape \['\?', 3, 112, 112\]"):
        models.load(str(spec))


def test_embedding_size_mismatch(files: tuple[Path, Path], tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "dim.toml",
                      model=f'name = "n"\nformat = "torchscript"\nfile = "{files[1]}"',
                      output='[output]\nmetric = "cosine"\nthreshold = 0.4\nsize = 512')
    with pytest.raises(ValueError, match=r"output\.size is 512 but the network returns 16-d"):
        models.load(str(spec))


def test_no_threshold_and_no_card_says_how_to_calibrate(files: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "cal.toml", model=onnx_model(files[0]),
                      output='[output]\nmetric = "cosine"')
    with pytest.raises(ValueError, match=r"no output\.threshold .*`facerobust models calibrate"):
        models.load(str(spec))
    spec.with_name("cal.card.json").write_text('{"threshold": 0.42}')
    assert models.load(str(spec)).threshold == 0.42


def test_python_entry_point(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "py.toml",
                      model='name = "py"\nformat = "python"\n'
                            'entry = "tests.helpers.exported:TinyArcFace"')
    model = models.load(str(spec))
    assert model.embedding_dim == 16
    bad = write_spec(tmp_path / "bad.toml",
                     model='name = "py"\nformat = "python"\nentry = "no_such_pkg:build"')
    with pytest.raises(ValueError, match=r"model\.entry 'no_such_pkg:build': cannot import"):
        models.load(str(bad))


def test_the_gate_loads_a_spec_at_its_threshold(files: tuple[Path, Path], tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "gate-model.toml", model=onnx_model(files[0]))
    cfg = parse_gate_config({"gate": {"model": str(spec)}})
    model = load_model(cfg.system.model)
    assert model.name == "net"
    assert operating_threshold(cfg.system.model, model, cfg.system.threshold) == 0.5
