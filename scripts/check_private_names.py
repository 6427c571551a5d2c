"""Fail on uses of another file's private names inside the package (run by ``make lint``).

A name starting with one underscore (``_pairs``, not ``__version__``) belongs to its file.
Flags ``from facerobust.x import _name`` and ``module._name`` where ``module`` was bound by
an import of another facerobust module (``from facerobust.data import align``;
``align._landmarks``). Usage: ``python scripts/check_private_names.py [SRC_ROOT]``.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "facerobust"
# Files whose violations are known and owned elsewhere (path under src -> why): reported, not
# failed. Delete an entry with its fix; an entry whose file is gone is reported too.
KNOWN: dict[str, str] = {}


@dataclass(frozen=True)
class Violation:
    """One use of a private name of ``owner`` in ``path`` at ``line``."""

    path: Path
    line: int
    owner: str
    name: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: uses {self.owner}.{self.name} (private to its file)"


def is_private(name: str) -> bool:
    """One leading underscore, not a dunder."""
    return name.startswith("_") and not name.startswith("__")


def module_name(path: Path, src: Path) -> str:
    """Dotted module name of ``path`` under the source root ``src``."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(dotted: str, src: Path) -> bool:
    base = src.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _absolute(node: ast.ImportFrom, here: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = here.split(".")
    keep = len(parts) - node.level + (1 if is_package else 0)
    base = parts[:keep]
    return ".".join(base + ([node.module] if node.module else []))


def check_file(path: Path, src: Path) -> list[Violation]:
    """The private-name uses of other facerobust modules in one file."""
    here = module_name(path, src)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    aliases: dict[str, str] = {}  # local name -> facerobust module it is bound to
    found: list[Violation] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == PACKAGE and a.name != here:
                    aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, here, path.name == "__init__.py")
            if source.split(".")[0] != PACKAGE:
                continue
            for a in node.names:
                target = f"{source}.{a.name}"
                if _is_module(target, src):
                    if target != here:
                        aliases[a.asname or a.name] = target
                elif is_private(a.name) and source != here:
                    found.append(Violation(path, node.lineno, source, a.name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            dotted = _dotted(node.value)
            if dotted in aliases:
                found.append(Violation(path, node.lineno, aliases[dotted], node.attr))
    return sorted(found, key=lambda v: (str(v.path), v.line))


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def check_tree(src: Path) -> list[Violation]:
    """Every violation under ``src/facerobust``."""
    return [v for p in sorted((src / PACKAGE).rglob("*.py")) for v in check_file(p, src)]


def split_known(found: list[Violation], src: Path) -> tuple[list[Violation], list[Violation]]:
    """(violations in :data:`KNOWN` files, the others)."""
    known = [v for v in found if v.path.relative_to(src).as_posix() in KNOWN]
    return known, [v for v in found if v not in known]


def main(argv: list[str]) -> int:
    src = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "src"
    known, new = split_known(check_tree(src), src)
    for rel, why in KNOWN.items():
        n = sum(v.path.relative_to(src).as_posix() == rel for v in known)
        state = f"{n} known use(s)" if (src / rel).is_file() else "file gone: delete the entry"
        print(f"{rel}: {state} ({why})", file=sys.stderr)
    for v in new:
        print(v)
    print(f"{len(new)} use(s) of another file's private names", file=sys.stderr)
    return 1 if new else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
