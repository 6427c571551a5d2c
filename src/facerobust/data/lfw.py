"""LFW verification protocol readers (``pairs.txt``, ``pairsDevTrain.txt``, ``pairsDevTest.txt``).

Layouts accepted for ``root``: ``<root>/pairs.txt`` with the images in ``<root>/images/``,
``<root>/lfw_funneled/``, ``<root>/lfw/`` or directly in ``<root>/<Person>/``; the image of
person ``P`` number ``i`` is ``<images>/P/P_<i:04d>.jpg``.

File format (Huang et al., "Labeled Faces in the Wild", 2007): a header ``<folds> <n>``
(``pairs.txt``: ``10 300``) or ``<n>`` (View 1 files, one fold), then per fold ``n`` matched
lines ``name i j`` followed by ``n`` mismatched lines ``name1 i name2 j``.

>>> from facerobust.data.lfw import LFWPairs
>>> lfw = LFWPairs("/data/lfw-gray")                  # doctest: +SKIP
>>> len(lfw.pairs), lfw.pairs[0].same, lfw.pairs[0].fold  # doctest: +SKIP
(6000, True, 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp")
_IMAGE_DIRS = ("images", "lfw_funneled", "lfw")


@dataclass(frozen=True)
class Pair:
    """One verification pair: two image paths, whether they show the same person, its fold."""

    path_a: Path
    path_b: Path
    same: bool
    fold: int


def images_dir(root: Path) -> Path:
    """The folder holding ``<Person>/`` sub-folders inside an LFW ``root``."""
    root = Path(root)
    for name in _IMAGE_DIRS:
        if (root / name).is_dir():
            return root / name
    return root


def image_path(images: Path, name: str, number: int) -> Path:
    return images / name / f"{name}_{number:04d}.jpg"


def _int(text: str, where: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{where}: {what} must be an integer, got {text!r}") from None
    if value < 0:
        raise ValueError(f"{where}: {what} must be >= 0, got {value}")
    return value


def _image(images: Path, files_root: Path, name: str, token: str, where: str) -> Path:
    """``token`` is an LFW image number (``images/name/name_NNNN.jpg``) or, in generated
    protocols, a path relative to the dataset root."""
    rel = Path(token)
    if rel.suffix.lower() not in IMAGE_SUFFIXES:
        return image_path(images, name, _int(token, where, "image number"))
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"{where}: image {token!r} must be a number or a path inside the "
                         "dataset folder")
    return files_root / rel


def parse_pairs(path: Path, images: Path, files_root: Path | None = None) -> list[Pair]:
    """Parse an LFW pairs file; raise ``ValueError`` naming the file and line on bad input.

    Image fields are LFW numbers or (as in protocols facerobust generates) file paths
    relative to ``files_root`` (default: the folder holding the pairs file)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"LFW pairs file not found: {path}") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a text file ({err.reason})") from None
    numbered = [(i + 1, ln.split()) for i, ln in enumerate(lines) if ln.strip()]
    if not numbered:
        raise ValueError(f"{path}: empty pairs file")
    head_no, head = numbered[0]
    where = f"{path}:{head_no}"
    if len(head) == 1:
        folds, per_fold = 1, _int(head[0], where, "pair count")
    elif len(head) == 2:
        folds = _int(head[0], where, "fold count")
        per_fold = _int(head[1], where, "pairs per fold")
    else:
        raise ValueError(f"{where}: header must be '<folds> <pairs per fold>' or '<pairs>', "
                         f"got {len(head)} fields")
    if folds == 0 or per_fold == 0:
        raise ValueError(f"{where}: header announces no pairs ({' '.join(head)})")
    body = numbered[1:]
    expected = folds * 2 * per_fold
    if len(body) != expected:
        raise ValueError(f"{path}: header announces {folds} fold(s) x 2 x {per_fold} = "
                         f"{expected} pair lines, found {len(body)}")
    files_root = Path(files_root) if files_root is not None else path.parent
    pairs: list[Pair] = []
    for k, (line_no, fields) in enumerate(body):
        fold, pos = divmod(k, 2 * per_fold)
        same = pos < per_fold
        where = f"{path}:{line_no}"
        if same:
            if len(fields) != 3:
                raise ValueError(f"{where}: matched pair must be 'name i j' (3 fields), "
                                 f"got {len(fields)}: {' '.join(fields)!r}")
            name_a, name_b, i, j = fields[0], fields[0], fields[1], fields[2]
        else:
            if len(fields) != 4:
                raise ValueError(f"{where}: mismatched pair must be 'name1 i name2 j' "
                                 f"(4 fields), got {len(fields)}: {' '.join(fields)!r}")
            name_a, name_b, i, j = fields[0], fields[2], fields[1], fields[3]
        pairs.append(Pair(_image(images, files_root, name_a, i, where),
                          _image(images, files_root, name_b, j, where), same, fold))
    return pairs


class LFWPairs:
    """The pairs of one LFW protocol file under ``root`` (default ``pairs.txt``, 10 folds)."""

    def __init__(self, root: Path | str, *, pairs_file: str = "pairs.txt") -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"LFW folder not found: {self.root}")
        pf = Path(pairs_file)
        self.pairs_path = pf if pf.is_absolute() else self.root / pf
        self.images = images_dir(self.root)
        self.pairs: list[Pair] = parse_pairs(self.pairs_path, self.images, self.root)

    @property
    def n_folds(self) -> int:
        return max(p.fold for p in self.pairs) + 1

    def image_paths(self) -> list[Path]:
        """Unique image paths used by the pairs, in first-use order."""
        return list(dict.fromkeys(p for pair in self.pairs for p in (pair.path_a, pair.path_b)))

    def missing(self) -> list[Path]:
        """Pair images that do not exist on disk."""
        return [p for p in self.image_paths() if not p.is_file()]

    def people(self) -> dict[str, list[Path]]:
        """Every person folder under the images folder -> sorted image paths (all of LFW)."""
        out: dict[str, list[Path]] = {}
        for person in sorted(d for d in self.images.iterdir() if d.is_dir()):
            files = sorted(f for f in person.iterdir()
                           if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if files:
                out[person.name] = files
        return out

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        return f"LFWPairs({str(self.root)!r}, pairs={len(self.pairs)}, folds={self.n_folds})"
