"""Dataset sources, one abstraction: an LFW copy, an identity-folder tree, or a flat folder with
a listing file.

* ``lfw``: ``<root>/pairs.txt`` + ``<root>/images/<Person>/<Person>_NNNN.jpg`` (LFW's own
  verification protocol is used).
* ``folders``: ``<root>/<identity>/<image>`` (VGGFace2, CASIA-WebFace, CelebA-by-folder).
* ``cfp``: CFP's ``Data/Images/<id>/frontal|profile/NN.jpg`` with its official ``ff`` or
  ``fp`` protocol (``protocol``; :mod:`facerobust.data.cfp`).
* ``listing``: images in ``<root>`` (or below it) plus a listing file of ``file identity``
  lines (CelebA's ``identity_CelebA.txt``) or a CSV with a header naming a file column
  (``file``, ``filename``, ``image``, ``path``) and an identity column (``identity``, ``id``,
  ``class``, ``class_id``, ``label``).

``layout="auto"`` picks the one that applies (an error lists what was looked for when none or
several do). Problems that do not stop a run (empty identity folders, byte-identical files
filed under two identities, listed files that are missing) are collected in
``Dataset.warnings`` and ``Dataset.missing``, each naming the file.

>>> from facerobust.data.sources import open_dataset
>>> ds = open_dataset("/data/vggface2/train")           # doctest: +SKIP
>>> ds.layout, len(ds.people), ds.pairs is None           # doctest: +SKIP
('folders', 9131, True)
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from facerobust.data.cfp import cfp_pairs, cfp_people, check_protocol, is_cfp_root
from facerobust.data.lfw import IMAGE_SUFFIXES, LFWPairs, Pair, images_dir, parse_pairs

LAYOUTS = ("auto", "lfw", "cfp", "folders", "listing")
LISTING_NAMES = ("identity_CelebA.txt", "identities.txt", "identities.csv", "listing.txt",
                 "listing.csv", "training_identities.csv")
FILE_COLUMNS = ("file", "filename", "file_name", "image", "image_id", "path")
ID_COLUMNS = ("identity", "id", "class", "class_id", "label", "person", "name")


@dataclass(frozen=True)
class Dataset:
    """Identities -> image files, and the dataset's own verification pairs when it has them."""

    root: Path
    layout: str
    people: dict[str, list[Path]]
    pairs: list[Pair] | None = None
    pairs_file: Path | None = None
    listing: Path | None = None
    warnings: list[str] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)

    @property
    def n_images(self) -> int:
        return sum(len(v) for v in self.people.values())

    def describe(self) -> dict[str, object]:
        return {"layout": self.layout, "identities": len(self.people),
                "images": self.n_images, "pairs_file": str(self.pairs_file or ""),
                "listing": str(self.listing or ""), "warnings": self.warnings,
                "missing": [str(p) for p in self.missing]}


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _identity_dirs(root: Path) -> list[Path]:
    return sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def _has_identity_folders(root: Path) -> bool:
    return any(any(_is_image(f) for f in d.iterdir()) for d in _identity_dirs(root))


def find_listing(root: Path) -> Path | None:
    """The listing file of a flat folder: a known name, else the only .txt/.csv in ``root``."""
    for name in LISTING_NAMES:
        if (root / name).is_file():
            return root / name
    tables = [f for f in root.iterdir() if f.is_file() and f.suffix.lower() in (".txt", ".csv")
              and f.name not in ("README.txt", "pairs.txt")]
    return tables[0] if len(tables) == 1 else None


def detect_layout(root: Path) -> str:
    """``lfw``, ``cfp``, ``folders`` or ``listing`` for ``root``; ``ValueError`` when none
    applies."""
    if (root / "pairs.txt").is_file():
        return "lfw"
    if is_cfp_root(root):
        return "cfp"
    if _has_identity_folders(root):
        return "folders"
    if find_listing(root) is not None:
        return "listing"
    raise ValueError(f"{root}: cannot tell the dataset layout: no pairs.txt (lfw), no "
                     "<identity>/<image> sub-folders (folders) and no listing file such as "
                     "identity_CelebA.txt or one .csv (listing); set layout and listing")


def _folders(root: Path) -> tuple[dict[str, list[Path]], list[str]]:
    people: dict[str, list[Path]] = {}
    warnings: list[str] = []
    for folder in _identity_dirs(root):
        files = sorted(f for f in folder.iterdir() if _is_image(f))
        if files:
            people[folder.name] = files
        else:
            warnings.append(f"{folder}: identity folder without image files, ignored")
    return people, warnings


def _listing_rows(listing: Path) -> list[tuple[str, str]]:
    text = listing.read_text(encoding="utf-8", errors="replace").splitlines()
    if listing.suffix.lower() == ".csv":
        reader = csv.DictReader(text)
        header = {h.strip().lower(): h for h in (reader.fieldnames or [])}
        file_col = next((header[c] for c in FILE_COLUMNS if c in header), None)
        id_col = next((header[c] for c in ID_COLUMNS if c in header), None)
        if file_col is None or id_col is None:
            raise ValueError(f"{listing}: a CSV listing needs a file column "
                             f"({', '.join(FILE_COLUMNS)}) and an identity column "
                             f"({', '.join(ID_COLUMNS)}); found {', '.join(header) or 'none'}")
        return [(row[file_col].strip(), row[id_col].strip()) for row in reader
                if row.get(file_col) and row.get(id_col)]
    rows = []
    for no, line in enumerate(text, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ValueError(f"{listing}:{no}: a listing line is 'file identity', got "
                             f"{len(fields)} fields: {line.strip()!r}")
        rows.append((fields[0], fields[1]))
    return rows


def _listed(root: Path, listing: Path) -> tuple[dict[str, list[Path]], list[Path]]:
    people: dict[str, list[Path]] = defaultdict(list)
    missing: list[Path] = []
    for name, identity in _listing_rows(listing):
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"{listing}: file {name!r} must be a path inside {root}")
        path = root / rel
        if not path.is_file():
            path = listing.parent / rel
        if path.is_file():
            people[identity].append(path)
        else:
            missing.append(root / rel)
    if not people:
        raise ValueError(f"{listing}: none of its {len(missing)} listed files exists under "
                         f"{root}")
    return {k: sorted(v) for k, v in sorted(people.items())}, missing


DUPLICATE_CHECK_LIMIT = 100_000  # images; beyond this the check would read most files


def duplicate_warnings(people: dict[str, list[Path]]) -> list[str]:
    """Byte-identical files filed under different identities (same size, then same sha256)."""
    total = sum(len(v) for v in people.values())
    if total > DUPLICATE_CHECK_LIMIT:
        return [f"duplicate-file check skipped: {total} images (> {DUPLICATE_CHECK_LIMIT})"]
    by_size: dict[int, list[tuple[str, Path]]] = defaultdict(list)
    for identity, files in people.items():
        for f in files:
            by_size[f.stat().st_size].append((identity, f))
    warnings = []
    for group in by_size.values():
        if len({ident for ident, _ in group}) < 2:
            continue
        by_hash: dict[str, list[tuple[str, Path]]] = defaultdict(list)
        for ident, f in group:
            by_hash[hashlib.sha256(f.read_bytes()).hexdigest()].append((ident, f))
        for same in by_hash.values():
            if len({ident for ident, _ in same}) > 1:
                warnings.append("identical files under different identities: "
                                + ", ".join(f"{f} ({ident})" for ident, f in same))
    return warnings


def open_dataset(root: Path | str, *, layout: str = "auto", listing: Path | str | None = None,
                 pairs_file: Path | str | None = None, protocol: str | None = None) -> Dataset:
    """Open the dataset at ``root``; ``pairs_file`` (a pairs.txt-format file, e.g. one a
    previous run generated) overrides the dataset's own protocol; ``protocol`` picks CFP's
    (``ff``, the default, or ``fp``) and is refused for other layouts."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if layout == "auto":
        layout = "listing" if listing else detect_layout(root)
    if protocol is not None and layout != "cfp":
        raise ValueError(f"protocol {protocol!r} applies to CFP only; {root} has the "
                         f"{layout} layout (use pairs_file for its pairs)")
    warnings: list[str] = []
    missing: list[Path] = []
    pairs: list[Pair] | None = None
    found_listing: Path | None = None
    if layout == "lfw":
        lfw = LFWPairs(root)
        people, pairs, pairs_path = lfw.people(), lfw.pairs, lfw.pairs_path
    elif layout == "cfp":
        key = check_protocol(protocol or "ff")
        people, pairs = cfp_people(root), cfp_pairs(root, key)
        pairs_path = root / "Protocol" / "Split" / key.upper()
    elif layout == "folders":
        people, warnings = _folders(root)
        pairs_path = None
    else:
        found_listing = Path(listing) if listing else find_listing(root)
        if found_listing is None:
            raise ValueError(f"{root}: layout 'listing' needs a listing file: set listing")
        if not found_listing.is_absolute():
            found_listing = root / found_listing
        if not found_listing.is_file():
            raise FileNotFoundError(f"listing file not found: {found_listing}")
        people, missing = _listed(root, found_listing)
        pairs_path = None
    if not people:
        raise ValueError(f"{root}: no identity with an image file ({layout} layout)")
    if pairs_file:

        pairs_path = Path(pairs_file).expanduser()
        pairs = parse_pairs(pairs_path, images_dir(root), root)
    warnings += duplicate_warnings(people) if layout in ("folders", "listing") else []
    return Dataset(root=root, layout=layout, people=people, pairs=pairs, pairs_file=pairs_path,
                   listing=found_listing, warnings=warnings, missing=missing)
