"""Parsed GraphDef nodes (the ``modelTopology.node`` list of a TF.js graph model)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any


def _decode(s: str) -> str:
    """GraphDef JSON stores byte strings base64-encoded."""
    try:
        return base64.b64decode(s, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return s


@dataclass(frozen=True)
class Node:
    """One op of the graph: ``inputs`` are ``(node_name, output_index)`` pairs."""

    name: str
    op: str
    inputs: tuple[tuple[str, int], ...]
    attr: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Node:
        inputs: list[tuple[str, int]] = []
        for ref in raw.get("input", []):
            if ref.startswith("^"):
                continue  # control dependency: no data flows
            name, _, index = ref.partition(":")
            inputs.append((name, int(index) if index.isdigit() else 0))
        return cls(raw["name"], raw["op"], tuple(inputs), dict(raw.get("attr", {})))

    def attr_str(self, key: str, default: str) -> str:
        value = self.attr.get(key)
        return _decode(value["s"]) if value and "s" in value else default

    def attr_strs(self, key: str, default: list[str]) -> list[str]:
        value = self.attr.get(key)
        if not value or "list" not in value:
            return default
        return [_decode(s) for s in value["list"].get("s", [])]

    def attr_ints(self, key: str, default: list[int]) -> list[int]:
        value = self.attr.get(key)
        if not value or "list" not in value:
            return default
        return [int(i) for i in value["list"].get("i", [])] or default

    def attr_float(self, key: str, default: float) -> float:
        value = self.attr.get(key)
        return float(value["f"]) if value and "f" in value else default

    def attr_bool(self, key: str, default: bool) -> bool:
        value = self.attr.get(key)
        return bool(value["b"]) if value and "b" in value else default
