"""Your own models, registered by ``facerobust models add``: checked, then copied with their
spec (and card) into the user model folder (:func:`facerobust.paths.user_models_dir`), where
``models.load(NAME)`` finds them.

>>> report = check_model_spec("my-arcface.toml")   # doctest: +SKIP
>>> report["embedding_dim"], report["onnxruntime_max_abs_diff"]   # doctest: +SKIP
(512, 3.1e-06)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facerobust.models.onnx_import import onnxruntime_outputs
from facerobust.models.spec_file import ModelFileSpec, read_model_spec, sha256_of
from facerobust.models.spec_model import build_spec_model, read_card
from facerobust.paths import user_models_dir

ONNXRUNTIME_TOLERANCE = 1e-4  # max |ours - onnxruntime|, relative to the descriptor scale


def check_model_spec(path: str | Path) -> dict[str, Any]:
    """Load the spec's model, run two chips, compare an ONNX import with onnxruntime; the
    figures found (``ValueError`` naming the file when a check fails)."""
    spec = read_model_spec(path)
    model = build_spec_model(spec, require_threshold=False)
    chips = torch.rand(2, 3, 150, 150, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        desc = model(chips)
    if not torch.isfinite(desc).all():
        raise ValueError(f"{spec.path}: the network returns non-finite descriptors")
    if float((desc[0] - desc[1]).abs().max()) == 0.0:
        raise ValueError(f"{spec.path}: the network returns the same descriptor for two "
                         "different chips")
    file = spec.file_path()
    report: dict[str, Any] = {
        "name": spec.name, "format": spec.model.format, "file": str(file) if file else None,
        "sha256": sha256_of(file) if file else None, "embedding_dim": model.embedding_dim,
        "metric": model.metric, "threshold": model.threshold or None,
        "template": spec.input.template, "input_size": spec.input.size}
    if spec.model.format == "onnx" and file is not None:
        with torch.no_grad():
            net_in = model.network_input(chips)
            ours = model.network(net_in).reshape(2, -1).numpy()
        ref = onnxruntime_outputs(file, net_in.numpy()).reshape(2, -1)
        diff = float(np.abs(ours - ref).max())
        report["onnxruntime_max_abs_diff"] = diff
        if diff > ONNXRUNTIME_TOLERANCE * max(1.0, float(np.abs(ref).max())):
            raise ValueError(f"{spec.path}: the torch import differs from onnxruntime by "
                             f"{diff:.3g} (max |diff|; tolerance {ONNXRUNTIME_TOLERANCE:g})")
    return report


def _toml_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(float(value)) if isinstance(value, float) else str(value)


def spec_toml(spec: ModelFileSpec, file: str, sha256: str) -> str:
    """The spec as TOML text, its file renamed to ``file`` and pinned to ``sha256``."""
    tables: dict[str, dict[str, Any]] = {
        "model": {k: v for k, v in vars(spec.model).items() if v},
        "input": vars(spec.input), "output": vars(spec.output)}
    if file:
        tables["model"].update(file=file, sha256=sha256)
    cal = spec.calibration
    if cal is not None:  # a relative data folder stays the one beside the original spec
        data = str((spec.path.parent / Path(cal.data).expanduser()).resolve()) if cal.data \
            else ""
        tables["calibration"] = {"far": cal.far, **({"data": data} if data else {})}
    lines: list[str] = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()
                  if not (k == "landmarks" and not v)]
        lines.append("")
    return "\n".join(lines)


def add_model(path: str | Path, *, known: set[str], force: bool = False
              ) -> tuple[Path, dict[str, Any]]:
    """Check the spec at ``path`` and register it (network file, spec, card) in the user model
    folder; ``known`` are the zoo's names, which a user model may not take. The registered
    spec and the checks' figures (:func:`check_model_spec`)."""
    spec = read_model_spec(path)
    if spec.name in known:
        raise ValueError(f"{spec.path}: model.name {spec.name!r} is a zoo model; pick another")
    folder = user_models_dir()
    target = folder / f"{spec.name}.toml"
    if target.exists() and not force:
        raise ValueError(f"a model named {spec.name!r} is already registered ({target}); "
                         "remove it first or add --force")
    report = check_model_spec(spec.path)
    file, copied = spec.file_path(), ""
    if file is not None:
        copied = f"{spec.name}{''.join(file.suffixes) or '.bin'}"
        shutil.copyfile(file, folder / copied)
    target.write_text(spec_toml(spec, copied, sha256_of(file) if file else ""),
                      encoding="utf-8")
    card = read_card(spec)
    if card is not None:
        (folder / f"{spec.name}.card.json").write_text(json.dumps(card, indent=2),
                                                       encoding="utf-8")
    return target, report


def user_models() -> list[tuple[ModelFileSpec, dict[str, Any] | None]]:
    """Every registered user model with its card (``None`` when not calibrated)."""
    out = []
    for path in sorted(user_models_dir().glob("*.toml")):
        spec = read_model_spec(path, check_files=False)
        out.append((spec, read_card(spec)))
    return out


def remove_model(name: str) -> list[Path]:
    """Delete a registered user model (spec, network file, card); the files removed."""
    folder = user_models_dir()
    spec_path = folder / f"{name}.toml"
    if "/" in name or not spec_path.is_file():
        have = ", ".join(s.name for s, _ in user_models()) or "none"
        raise ValueError(f"no user model named {name!r} (registered: {have})")
    spec = read_model_spec(spec_path, check_files=False)
    removed = [p for p in (spec.file_path(), spec.card_path(), spec_path)
               if p is not None and p.is_file() and p.parent == folder]
    for p in removed:
        p.unlink()
    return removed
