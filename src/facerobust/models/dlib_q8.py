"""dlib's ResNet with face-api's uint8-quantised weights ("leaked, quantised copy").

``@vladmandic/face-api`` ships ``model/face_recognition_model.bin`` + a layers-style weights
manifest: dlib's face descriptor re-exported to TF.js, most tensors quantised to uint8
(``value = q * scale + min``). We dequantise them and load them into the same PyTorch module
as the exact port (:class:`facerobust.models.dlib_resnet.DlibResNet`), folding each
``scale`` (dlib's affine) into the preceding convolution.

>>> net = facerobust.models.load("dlib-resnet-q8")   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facerobust.models.dlib_resnet import DEFAULT_THRESHOLD, DlibResNet, block_specs
from facerobust.models.fetch import FACE_API, package_file
from facerobust.models.tfjs.weights import read_weights_manifest_file

MANIFEST = "model/face_recognition_model-weights_manifest.json"
# dlib's input_rgb_image_sized<150> channel means (the same constants face-api subtracts).
MEAN_RGB = (122.782, 117.001, 104.298)


def weights_file() -> Path | None:
    path = package_file(FACE_API, MANIFEST)
    return path if path is not None and path.is_file() else None


def block_names() -> list[str]:
    """face-api's names of the residual blocks in :func:`block_specs` order."""
    names: list[str] = []
    counts: dict[int, int] = {}
    for _, out, stride in block_specs():
        if stride == 2:
            names.append(f"conv{out}_down" if f"conv{out}_down" not in names else
                         f"conv{out}_down_out")
        else:
            counts[out] = counts.get(out, 0) + 1
            names.append(f"conv{out}_{counts[out]}")
    return names


def _folded(w: dict[str, np.ndarray], prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    filters = w[f"{prefix}/conv/filters"]  # kh, kw, cin, cout
    scale = w[f"{prefix}/scale/weights"]
    weight = np.transpose(filters, (3, 2, 0, 1)) * scale[:, None, None, None]
    bias = w[f"{prefix}/conv/bias"] * scale + w[f"{prefix}/scale/biases"]
    return (torch.from_numpy(np.ascontiguousarray(weight, np.float32)),
            torch.from_numpy(bias.astype(np.float32)))


def state_dict_from_face_api(path: Path) -> dict[str, torch.Tensor]:
    """Map face-api's dequantised tensors onto :class:`DlibResNet` parameter names."""
    w = read_weights_manifest_file(path)
    out: dict[str, torch.Tensor] = {"mean_rgb": torch.tensor(MEAN_RGB).view(1, 3, 1, 1)}
    out["stem.weight"], out["stem.bias"] = _folded(w, "conv32_down")
    for i, name in enumerate(block_names()):
        for j in (1, 2):
            out[f"blocks.{i}.conv{j}.weight"], out[f"blocks.{i}.conv{j}.bias"] = _folded(
                w, f"{name}/conv{j}")
    out["fc.weight"] = torch.from_numpy(np.ascontiguousarray(w["fc"].T, np.float32))
    if len(w) != 4 + 8 * len(block_names()) + 1:
        raise ValueError(f"{path}: {len(w)} tensors, expected {5 + 8 * len(block_names())}")
    reference = DlibResNet().state_dict()
    for key, value in reference.items():
        if key not in out or out[key].shape != value.shape:
            got = tuple(out[key].shape) if key in out else None
            raise ValueError(f"{path}: {key} has shape {got}, expected {tuple(value.shape)}")
    return out


def build(*, threshold: float = DEFAULT_THRESHOLD, channels_last: bool = True) -> DlibResNet:
    path = weights_file()
    if path is None:
        raise FileNotFoundError("face-api weights are not fetched; run "
                                "`facerobust models fetch dlib-resnet-q8`")
    model = DlibResNet(threshold=threshold, channels_last=channels_last)
    model.load_state_dict(state_dict_from_face_api(path))
    model.name = "dlib-resnet-q8"
    return model.eval()
