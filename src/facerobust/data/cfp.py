"""CFP (Celebrities in Frontal-Profile; Sengupta et al., WACV 2016): its people and its official
frontal-frontal (``ff``) and frontal-profile (``fp``) 10-fold verification protocols.

Layout of a CFP ``root``:

* ``Data/Images/<id>/frontal/NN.jpg`` and ``Data/Images/<id>/profile/NN.jpg`` (``<id>`` is
  001-500); line ``<id>`` of ``Data/list_name.txt`` is that person's name.
* ``Protocol/Pair_list_F.txt`` and ``Protocol/Pair_list_P.txt``: numbered image lists
  (``k path``, paths relative to ``Protocol/``).
* ``Protocol/Split/FF|FP/<01-10>/same.txt`` and ``diff.txt``: lines ``i,j`` pairing image ``i``
  of the frontal list with image ``j`` of the frontal (FF) or profile (FP) list.
* ``lfw_overlap.txt`` (added by facerobust's copy): ``id<TAB>name`` of the people also in LFW.

The pairs are :class:`facerobust.data.lfw.Pair` objects (fold ``0``-``9``), so the LFW 10-fold
accuracy code (threshold chosen on 9 folds, tested on the 10th) runs on them unchanged.

>>> from facerobust.data.cfp import cfp_pairs, training_people
>>> pairs = cfp_pairs("/data/cfp", "fp")            # doctest: +SKIP
>>> len(pairs), len(training_people("/data/cfp"))    # doctest: +SKIP
(7000, 328)
"""

from __future__ import annotations

import os
from pathlib import Path

from facerobust.data.lfw import Pair

PROTOCOLS = ("ff", "fp")  # frontal-frontal, frontal-profile
VIEWS = ("frontal", "profile")
OVERLAP_FILE = "lfw_overlap.txt"
_SECOND_LIST = {"ff": "Pair_list_F.txt", "fp": "Pair_list_P.txt"}


def is_cfp_root(root: Path | str) -> bool:
    """Whether ``root`` has CFP's ``Data/Images`` and ``Protocol/Split`` folders."""
    root = Path(root)
    return (root / "Data" / "Images").is_dir() and (root / "Protocol" / "Split").is_dir()


def check_protocol(protocol: str) -> str:
    """``protocol`` lower-cased (``ff`` or ``fp``); ``ValueError`` naming it otherwise."""
    key = protocol.lower() if isinstance(protocol, str) else protocol
    if key not in PROTOCOLS:
        raise ValueError(f"CFP protocol must be one of {', '.join(PROTOCOLS)} (frontal-frontal, "
                         f"frontal-profile), got {protocol!r}")
    return str(key)


def cfp_names(root: Path | str) -> dict[str, str]:
    """CFP id (``001``...) -> person name, from ``Data/list_name.txt``."""
    path = Path(root) / "Data" / "list_name.txt"
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return {f"{k:03d}": name.strip() for k, name in enumerate(lines, 1) if name.strip()}


def cfp_people(root: Path | str, *, views: tuple[str, ...] = VIEWS) -> dict[str, list[Path]]:
    """CFP id -> its photos of ``views`` (frontal first, then profile), sorted."""
    bad = [v for v in views if v not in VIEWS]
    if bad or not views:
        raise ValueError(f"views must be a non-empty subset of {VIEWS}, got {views!r}")
    images = Path(root) / "Data" / "Images"
    if not images.is_dir():
        raise FileNotFoundError(f"CFP image folder not found: {images}")
    people: dict[str, list[Path]] = {}
    for person in sorted(d for d in images.iterdir() if d.is_dir()):
        files = [f for v in views for f in sorted((person / v).glob("*.jpg"))]
        if files:
            people[person.name] = files
    return people


def lfw_overlap(root: Path | str) -> set[str]:
    """The CFP ids listed in ``lfw_overlap.txt`` (people who are also LFW identities)."""
    path = Path(root) / OVERLAP_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: it lists the CFP people also in LFW, "
                                "needed to keep them out of training")
    ids = set()
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("\t", 1)
        if not line.strip() or line.startswith("#"):
            continue
        if not fields[0].strip().isdigit():
            raise ValueError(f"{path}:{no}: expected '<id><TAB><name>', got {line!r}")
        ids.add(f"{int(fields[0]):03d}")
    return ids


def training_people(root: Path | str, *, views: tuple[str, ...] = VIEWS
                    ) -> dict[str, list[Path]]:
    """The CFP people a model may train on when it is judged on LFW: all minus the LFW
    overlap, so no person is on both sides."""
    overlap = lfw_overlap(root)
    return {k: v for k, v in cfp_people(root, views=views).items() if k not in overlap}


def pair_person_ids(pair: Pair) -> tuple[str, str]:
    """The CFP ids of a protocol pair's two photos (``Data/Images/<id>/<view>/NN.jpg``)."""
    return pair.path_a.parent.parent.name, pair.path_b.parent.parent.name


def held_out_pairs(root: Path | str, pairs: list[Pair]) -> list[Pair]:
    """The ``pairs`` whose two people are both in the LFW overlap: CFP's held-out people, whom
    no facerobust training uses (:func:`training_people` leaves them out), so a model trained
    on CFP is judged on people it never saw."""
    held = lfw_overlap(root)
    return [p for p in pairs if set(pair_person_ids(p)) <= held]


def read_image_list(path: Path) -> dict[int, Path]:
    """A ``Pair_list_*.txt`` file: image number -> absolute path (relative to its folder)."""
    if not path.is_file():
        raise FileNotFoundError(f"CFP image list not found: {path}")
    out: dict[int, Path] = {}
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[0].isdigit():
            raise ValueError(f"{path}:{no}: expected '<number> <path>', got {line.strip()!r}")
        out[int(fields[0])] = Path(os.path.normpath(path.parent / fields[1]))
    return out


def _split_pairs(path: Path, first: dict[int, Path], second: dict[int, Path], same: bool,
                 fold: int) -> list[Pair]:
    if not path.is_file():
        raise FileNotFoundError(f"CFP protocol file not found: {path}")
    pairs = []
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 2 or not all(f.isdigit() for f in fields):
            raise ValueError(f"{path}:{no}: expected 'i,j' (two image numbers), got "
                             f"{line.strip()!r}")
        i, j = int(fields[0]), int(fields[1])
        if i not in first or j not in second:
            raise ValueError(f"{path}:{no}: image number {i if i not in first else j} is not "
                             "in the protocol's image list")
        pairs.append(Pair(first[i], second[j], same, fold))
    return pairs


def cfp_pairs(root: Path | str, protocol: str = "ff") -> list[Pair]:
    """The official 10-fold pairs of ``protocol`` (``ff`` or ``fp``): per fold the ``same``
    pairs then the ``diff`` pairs, folds numbered 0-9 in split order."""
    key = check_protocol(protocol)
    proto = Path(root) / "Protocol"
    first = read_image_list(proto / _SECOND_LIST["ff"])
    second = first if key == "ff" else read_image_list(proto / _SECOND_LIST[key])
    split = proto / "Split" / key.upper()
    folds = sorted(d for d in split.iterdir() if d.is_dir()) if split.is_dir() else []
    if not folds:
        raise FileNotFoundError(f"CFP split folder without folds: {split}")
    pairs: list[Pair] = []
    for fold, folder in enumerate(folds):
        for name, same in (("same.txt", True), ("diff.txt", False)):
            pairs += _split_pairs(folder / name, first, second, same, fold)
    return pairs


def protocol_label(protocol: str) -> str:
    """``CFP-FF`` or ``CFP-FP``: the name results and cards use."""
    return f"CFP-{check_protocol(protocol).upper()}"
