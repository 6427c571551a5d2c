"""Reader for dlib's DNN serialisation format (``dlib::serialize`` of a ``loss_*`` network).

Only the pieces a feed-forward face network needs are understood: the ``loss_metric_``
loss, the ``input_rgb_image_sized`` input and the ``con_``, ``affine_``, ``relu_``,
``max_pool_``, ``avg_pool_``, ``add_prev_`` and ``fc_`` layers. Facts from dlib's
``serialize.h``, ``dnn/core.h``, ``dnn/layers.h``, ``dnn/input.h`` and ``dnn/loss.h``:

* integers: one control byte (low nibble = byte count, ``0x80`` = negative) then the
  little-endian magnitude; ``bool`` is the ASCII byte ``'0'``/``'1'``; strings are an
  unsigned length then the bytes; floats are an ``(int64 mantissa, int16 exponent)`` pair.
* tensors: ``int 2``, then ``n, k, nr, nc``, then raw little-endian float32 in NCHW order;
  ``alias_tensor`` (a view shape) is ``int 1`` then ``n, k, nr, nc``.
* a network: ``add_loss_layer`` version, the loss details, then every wrapper
  (``add_layer``/``add_tag_layer``/``add_skip_layer``) writes its version top-down; the
  bottom ``add_layer`` writes the input layer, then each ``add_layer`` writes its layer
  details and bookkeeping tensors bottom-up. Tag and skip ids are *not* stored, so the
  wiring has to come from the C++ network type.

>>> net = parse_dlib_net(path)                  # doctest: +SKIP
>>> [layer.kind for layer in net.layers][:4]    # doctest: +SKIP
['con', 'affine', 'relu', 'max_pool']
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

FC_HAS_BIAS = 0
CONV_MODE = 0


class DlibSerializationError(ValueError):
    """The file is not a dlib network this reader understands (or is truncated/corrupt)."""


@dataclass(frozen=True)
class DlibLayer:
    """One computational layer: its kind, dlib version string, settings and parameters."""

    kind: str
    version: str
    config: dict[str, int | float | bool] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class DlibNet:
    """A parsed network: ``layers`` run bottom-up (input side first)."""

    path: Path
    loss: dict[str, str | float]
    input: dict[str, str | int | tuple[float, float, float]]
    wrapper_versions: tuple[int, ...]
    layers: tuple[DlibLayer, ...]


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def fail(self, message: str) -> DlibSerializationError:
        return DlibSerializationError(f"{self.path}: {message} (at byte {self.pos})")

    def take(self, count: int, what: str) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise self.fail(f"file is truncated while reading {what}")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def integer(self, what: str, *, signed: bool = True) -> int:
        control = self.take(1, what)[0]
        size = control & (0x0F if signed else 0x8F)
        if size == 0 or size > 8:
            raise self.fail(f"bad integer control byte {control:#04x} for {what}")
        value = int.from_bytes(self.take(size, what), "little")
        return -value if signed and control & 0x80 else value

    def floating(self, what: str) -> float:
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.fail(f"old ASCII float format is not supported for {what}")
        mantissa = self.integer(what)
        exponent = self.integer(what)
        if exponent >= 32000:  # dlib's is_inf / is_ninf / is_nan markers
            return {32000: float("inf"), 32001: float("-inf")}.get(exponent, float("nan"))
        return float(np.ldexp(float(mantissa), exponent))

    def boolean(self, what: str) -> bool:
        byte = self.take(1, what)
        if byte not in (b"0", b"1"):
            raise self.fail(f"bad bool byte {byte!r} for {what}")
        return byte == b"1"

    def string(self, what: str) -> str:
        size = self.integer(what, signed=False)
        if size > 256:
            raise self.fail(f"implausible string length {size} for {what}")
        try:
            return self.take(size, what).decode("ascii")
        except UnicodeDecodeError as err:
            raise self.fail(f"non-ASCII string for {what}") from err

    def peek_string(self) -> str | None:
        """The string at the cursor if one plausibly starts there (cursor unchanged)."""
        start = self.pos
        try:
            text = self.string("peek")
        except DlibSerializationError:
            text = None
        self.pos = start
        return text

    def dims(self, what: str, version: int) -> tuple[int, int, int, int]:
        found = self.integer(what)
        if found != version:
            raise self.fail(f"{what}: expected tensor version {version}, found {found}")
        shape = tuple(self.integer(what) for _ in range(4))
        if min(shape) < 0:
            raise self.fail(f"{what}: negative tensor shape {shape}")
        return cast(tuple[int, int, int, int], shape)

    def tensor(self, what: str) -> np.ndarray:
        shape = self.dims(what, 2)
        count = int(np.prod(shape))
        raw = self.take(4 * count, what)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self, what: str) -> tuple[int, int, int, int]:
        return self.dims(what, 1)


def _split(reader: _Reader, flat: np.ndarray, offset: int, shape: tuple[int, ...], what: str
           ) -> np.ndarray:
    size = int(np.prod(shape))
    if offset + size > flat.size:
        raise reader.fail(f"{what}: parameter block has {flat.size} values, need {offset + size}")
    return flat[offset : offset + size].reshape(shape).copy()


def _con(r: _Reader, version: str) -> DlibLayer:
    if version not in ("con_4", "con_5", "con_6"):
        raise r.fail(f"unsupported con_ version {version!r}")
    params = r.tensor("con_ params").ravel()
    cfg: dict[str, int | float | bool] = {"num_filters": r.integer("num_filters")}
    for key in ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"):
        cfg[key] = r.integer(key)
    filters = r.alias("con_ filters")
    biases = r.alias("con_ biases")
    for key in ("lr_mult", "wd_mult", "bias_lr_mult", "bias_wd_mult"):
        cfg[key] = r.floating(key)
    cfg["use_bias"] = r.boolean("use_bias") if version in ("con_5", "con_6") else True
    cfg["use_relu"] = r.boolean("use_relu") if version == "con_6" else False
    out = {"weight": _split(r, params, 0, filters, "con_ filters")}
    if cfg["use_bias"] and params.size > out["weight"].size:
        out["bias"] = _split(r, params, out["weight"].size, (biases[1],), "con_ biases")
    return DlibLayer("con", version, cfg, out)


def _affine(r: _Reader, version: str) -> DlibLayer:
    if version not in ("affine_", "affine_2"):
        raise r.fail(f"unsupported layer version {version!r} (expected affine_)")
    params = r.tensor("affine_ params").ravel()
    gamma = r.alias("affine_ gamma")
    r.alias("affine_ beta")
    cfg: dict[str, int | float | bool] = {"mode": r.integer("affine_ mode")}
    cfg["disabled"] = r.boolean("affine_ disabled") if version == "affine_2" else False
    size = int(np.prod(gamma))
    out = {
        "gamma": _split(r, params, 0, (size,), "affine_ gamma"),
        "beta": _split(r, params, size, (size,), "affine_ beta"),
    }
    return DlibLayer("affine", version, cfg, out)


def _relu(r: _Reader, version: str) -> DlibLayer:
    if version not in ("relu_", "relu_2"):
        raise r.fail(f"unsupported relu_ version {version!r}")
    disabled = r.boolean("relu_ disabled") if version == "relu_2" else False
    return DlibLayer("relu", version, {"disabled": disabled})


def _pool(r: _Reader, version: str) -> DlibLayer:
    kind = version[: -len("_2")]
    if version not in ("max_pool_2", "avg_pool_2"):
        raise r.fail(f"unsupported pooling version {version!r}")
    keys = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
    return DlibLayer(kind, version, {key: r.integer(key) for key in keys})


def _add_prev(r: _Reader, version: str) -> DlibLayer:
    return DlibLayer("add_prev", version)


def _fc(r: _Reader, version: str) -> DlibLayer:
    if version not in ("fc_2", "fc_3"):
        raise r.fail(f"unsupported fc_ version {version!r}")
    cfg: dict[str, int | float | bool] = {
        "num_outputs": r.integer("num_outputs", signed=False),
        "num_inputs": r.integer("num_inputs", signed=False),
    }
    params = r.tensor("fc_ params").ravel()
    weights = r.alias("fc_ weights")
    biases = r.alias("fc_ biases")
    cfg["bias_mode"] = r.integer("fc_ bias_mode")
    for key in ("lr_mult", "wd_mult", "bias_lr_mult", "bias_wd_mult"):
        cfg[key] = r.floating(key)
    cfg["use_bias"] = r.boolean("use_bias") if version == "fc_3" else True
    shape = (int(cfg["num_inputs"]), int(cfg["num_outputs"]))
    if weights[0] * weights[1] * weights[2] * weights[3] != shape[0] * shape[1]:
        raise r.fail(f"fc_ weight alias {weights} does not match {shape}")
    out = {"weight": _split(r, params, 0, shape, "fc_ weights")}
    if cfg["bias_mode"] == FC_HAS_BIAS and cfg["use_bias"]:
        out["bias"] = _split(r, params, out["weight"].size, (biases[1],), "fc_ biases")
    return DlibLayer("fc", version, cfg, out)


_LAYERS = {
    "con_": _con, "affine_": _affine, "relu_": _relu, "max_pool_": _pool,
    "avg_pool_": _pool, "add_prev_": _add_prev, "fc_": _fc,
}


def _layer(r: _Reader) -> DlibLayer:
    version = r.string("layer version")
    for prefix, parse in _LAYERS.items():
        if version == prefix or (version.startswith(prefix) and version[len(prefix) :].isdigit()):
            return parse(r, version)
    raise r.fail(f"unsupported layer type {version!r}")


def _bookkeeping(r: _Reader, *, extra_tensor: bool) -> None:
    for what in ("setup_called", "gradient_input_is_stale", "output_disabled"):
        r.boolean(what)
    r.tensor("x_grad")
    r.tensor("cached_output")
    if extra_tensor:
        r.tensor("params_grad")


def _loss(r: _Reader) -> dict[str, str | float]:
    version = r.integer("add_loss_layer version")
    if version != 1:
        raise r.fail(f"not a dlib network: add_loss_layer version {version}, expected 1")
    name = r.string("loss version")
    if name == "loss_metric_":
        return {"type": name, "margin": 0.04, "dist_thresh": 0.6}
    if name == "loss_metric_2":
        return {"type": name, "margin": r.floating("margin"), "dist_thresh": r.floating("thresh")}
    raise r.fail(f"unsupported loss layer {name!r}")


def _input(r: _Reader) -> dict[str, str | int | tuple[float, float, float]]:
    name = r.string("input layer version")
    if name != "input_rgb_image_sized":
        raise r.fail(f"unsupported input layer {name!r}")
    avg = (r.floating("avg_red"), r.floating("avg_green"), r.floating("avg_blue"))
    nr = r.integer("input nr", signed=False)
    nc = r.integer("input nc", signed=False)
    return {"type": name, "avg_rgb": avg, "nr": nr, "nc": nc}


def parse_dlib_net(path: str | Path) -> DlibNet:
    """Parse a dlib ``.dat`` network file; raise :class:`DlibSerializationError` naming it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DlibSerializationError(f"{path}: cannot read dlib network file: {err}") from err
    r = _Reader(data, path)
    loss = _loss(r)
    wrappers: list[int] = []
    while True:  # wrapper versions top-down until the bottom add_layer meets the input layer
        version = r.integer("layer wrapper version")
        if version not in (1, 2, 3):
            raise r.fail(f"unexpected layer wrapper version {version}")
        if (r.peek_string() or "").startswith("input"):
            break
        wrappers.append(version)
        if len(wrappers) > 100_000:
            raise r.fail("no input layer found")
    if version not in (2, 3):
        raise r.fail(f"unsupported input add_layer version {version}")
    net_input = _input(r)
    layers = [_layer(r)]
    _bookkeeping(r, extra_tensor=True)  # grad_final
    if version == 3:
        r.integer("sample_expansion_factor", signed=False)
    while r.pos < len(data):
        layers.append(_layer(r))
        _bookkeeping(r, extra_tensor=False)
        # add_layer version 2 appends params_grad: a tensor starts with the int 2, while the
        # next layer's version string starts with its (longer) length.
        if r.pos + 1 < len(data) and data[r.pos : r.pos + 2] == struct.pack("BB", 1, 2):
            r.tensor("params_grad")
    if len(layers) > len(wrappers) + 1:
        raise r.fail(f"{len(layers)} layers but only {len(wrappers) + 1} layer wrappers")
    return DlibNet(path, loss, net_input, tuple(wrappers), tuple(layers))
