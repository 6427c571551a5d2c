"""Execute a TensorFlow.js graph model op by op with torch.

A graph model is ``model.json`` = ``{"modelTopology": {"node": [...]}, "weightsManifest":
[...]}`` plus binary shards. :class:`TFGraph` keeps every ``Const`` as a buffer (so ``.to()``
moves them) and runs the ops that the requested outputs depend on, in topological order, with
the torch implementations in :mod:`facerobust.models.tfjs.ops`. Everything is differentiable
with respect to the inputs. Tensors are NHWC, as in TF.

>>> g = load_graph_model(Path("models/mobilefacenet.json"))   # doctest: +SKIP
>>> emb = g(torch.rand(2, 112, 112, 3))[0]                       # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facerobust.models.tfjs.nodes import Node
from facerobust.models.tfjs.ops import get_op
from facerobust.models.tfjs.weights import read_manifest


def _parse_ref(ref: str) -> tuple[str, int]:
    name, _, index = ref.partition(":")
    return name, int(index) if index.isdigit() else 0


class TFGraph(nn.Module):
    """A GraphDef evaluated with torch ops; ``forward(*inputs)`` returns a list of outputs."""

    def __init__(
        self,
        nodes: Sequence[dict[str, Any]],
        weights: dict[str, np.ndarray],
        *,
        outputs: Sequence[str],
        inputs: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.nodes: dict[str, Node] = {}
        for raw in nodes:
            node = Node.from_json(raw)
            if node.name in self.nodes:
                raise ValueError(f"duplicate node name {node.name!r}")
            self.nodes[node.name] = node
        placeholders = [n.name for n in self.nodes.values() if n.op == "Placeholder"]
        self.input_names = list(inputs) if inputs is not None else placeholders
        for name in self.input_names:
            if name not in self.nodes:
                raise ValueError(f"input {name!r} is not a node of the graph")
        if not outputs:
            raise ValueError("a graph needs at least one output")
        self.output_refs = [_parse_ref(o) for o in outputs]
        self.output_names = list(outputs)
        self._const_attr: dict[str, str] = {}
        for i, node in enumerate(n for n in self.nodes.values() if n.op == "Const"):
            if node.name not in weights:
                raise ValueError(f"Const node {node.name!r} has no value in the weights manifest")
            value = torch.from_numpy(np.ascontiguousarray(weights[node.name]))
            attr = f"const_{i}"
            self.register_buffer(attr, value, persistent=False)
            self._const_attr[node.name] = attr
        self.order = self._schedule([name for name, _ in self.output_refs])
        for name in self.order:  # fail at build time, naming the first unsupported op
            get_op(self.nodes[name])

    def _schedule(self, targets: list[str]) -> list[str]:
        """Op nodes needed for ``targets`` in dependency order (no Const/Placeholder)."""
        order: list[str] = []
        state: dict[str, int] = {}
        for target in targets:
            stack: list[tuple[str, bool]] = [(target, False)]
            while stack:
                name, done = stack.pop()
                if name not in self.nodes:
                    raise ValueError(f"graph refers to missing node {name!r}")
                if done:
                    state[name] = 2
                    node = self.nodes[name]
                    if node.op not in ("Const", "Placeholder"):
                        order.append(name)
                    continue
                if state.get(name) == 2:
                    continue
                if state.get(name) == 1:
                    raise ValueError(f"graph has a cycle through {name!r}")
                state[name] = 1
                stack.append((name, True))
                for dep, _ in self.nodes[name].inputs:
                    if state.get(dep) != 2:
                        stack.append((dep, False))
        return order

    def constants(self) -> dict[str, torch.Tensor]:
        """The value of every ``Const`` node, by node name."""
        return {name: getattr(self, attr) for name, attr in self._const_attr.items()}

    def ops_used(self) -> dict[str, int]:
        """Op census of the scheduled part of the graph."""
        census: dict[str, int] = {}
        for name in self.order:
            op = self.nodes[name].op
            census[op] = census.get(op, 0) + 1
        return census

    def forward(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        if len(inputs) != len(self.input_names):
            raise ValueError(
                f"graph takes {len(self.input_names)} input(s) {self.input_names}, "
                f"got {len(inputs)}"
            )
        values: dict[str, torch.Tensor] = dict(zip(self.input_names, inputs, strict=True))
        for name, attr in self._const_attr.items():
            values[name] = getattr(self, attr)
        for name in self.order:
            node = self.nodes[name]
            try:
                args = [values[dep] for dep, _ in node.inputs]
            except KeyError as err:
                missing = err.args[0]
                raise ValueError(f"node {name!r} needs {missing!r}, which has no value") from None
            values[name] = get_op(node)(node, args)
        return [values[name] for name, _ in self.output_refs]


def default_outputs(model_json: dict[str, Any]) -> list[str]:
    """Output names from the model's signature, else the nodes nothing consumes."""
    for sig in (model_json.get("signature"),
                (model_json.get("userDefinedMetadata") or {}).get("signature")):
        if sig and sig.get("outputs"):
            return [_parse_ref(o.get("name", k))[0] for k, o in sig["outputs"].items()]
    nodes = model_json["modelTopology"]["node"]
    consumed = {_parse_ref(r.lstrip("^"))[0] for n in nodes for r in n.get("input", [])}
    return [n["name"] for n in nodes if n["name"] not in consumed and n["op"] != "Const"]


def load_graph_model(path: Path, *, outputs: Sequence[str] | None = None) -> TFGraph:
    """Build a :class:`TFGraph` from a TF.js ``model.json`` (weight shards beside it)."""
    path = Path(path)
    model_json = json.loads(path.read_text())
    if model_json.get("format") not in (None, "graph-model"):
        raise ValueError(f"{path}: format {model_json.get('format')!r} is not a graph model")
    if "modelTopology" not in model_json or "node" not in model_json["modelTopology"]:
        raise ValueError(f"{path}: no modelTopology.node list (not a TF.js graph model)")
    weights = read_manifest(model_json.get("weightsManifest", []), path.parent)
    return TFGraph(
        model_json["modelTopology"]["node"],
        weights,
        outputs=list(outputs) if outputs is not None else default_outputs(model_json),
    )
