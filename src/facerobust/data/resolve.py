"""Find a dataset folder by name, and the one default dataset of every command
(:func:`default_dataset`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from facerobust import paths
from facerobust.data.sources import detect_layout

# name -> folder names tried in order (``lfw`` accepts the fetched copy or the gray copy;
# ``lfw-color``: LFW View 2 in colour, deep-funneled; ``cfp``: CFP with its FF/FP protocols).
ALIASES: dict[str, tuple[str, ...]] = {
    "lfw": ("lfw", "lfw-gray"), "lfw-gray": ("lfw-gray",),
    "lfw-color": ("lfw-color", "lfw-colour"), "lfw-colour": ("lfw-color", "lfw-colour"),
    "cfp": ("cfp",), "cfp-ff": ("cfp",), "cfp-fp": ("cfp",),
}
CFP_PROTOCOL_NAMES = {"cfp-ff": "ff", "cfp-fp": "fp"}  # a CFP protocol chosen by name
FETCHABLE = ("lfw", "lfw-gray")  # `facerobust data fetch lfw` downloads these


EMBEDDED = "lfw-demo"  # the LFW subset shipped inside the package (data/demo/lfw-demo)
FULL_LFW = "lfw"  # a fetched LFW copy or lfw-gray (see ALIASES)


def embedded_dataset() -> Path:
    """The LFW subset shipped inside the package (see its README.md)."""
    return Path(str(resources.files("facerobust.data").joinpath(f"demo/{EMBEDDED}")))


def default_dataset() -> str:
    """The dataset every command uses when ``--dataset`` is not given: ``lfw`` when an LFW
    copy is found (``$FACEROBUST_DATA`` or the cache holds ``lfw/`` or ``lfw-gray/``), else
    the embedded ``lfw-demo`` (as ``make demo`` and the README do)."""
    found = any(paths.find_dataset(cand) is not None for cand in ALIASES[FULL_LFW])
    return FULL_LFW if found else EMBEDDED


def dataset_protocol(name: str) -> str | None:
    """The CFP protocol a dataset name picks (``cfp-fp`` -> ``fp``), else ``None`` (the
    dataset's own pairs; ``cfp`` alone means ``ff``)."""
    return CFP_PROTOCOL_NAMES.get(name)


def _is_lfw_root(folder: Path) -> bool:
    return (folder / "pairs.txt").is_file()


def _is_dataset(folder: Path) -> bool:
    """An identity-folder tree or a listed flat folder (not just a folder holding datasets)."""

    try:
        detect_layout(folder)
    except ValueError:
        return False
    return True


def resolve_dataset(name: str, data: Path | str | None = None) -> Path:
    """Folder of dataset ``name``.

    ``data`` may be the dataset folder itself (one holding ``pairs.txt``, identity
    sub-folders or a listing file) or a folder containing ``<name>/``; without it,
    ``$FACEROBUST_DATA/<name>`` then ``$FACEROBUST_CACHE/datasets/<name>`` are searched
    (:func:`facerobust.paths.find_dataset`); ``lfw-demo`` falls back to the embedded subset.
    """
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise ValueError(f"dataset name must be a plain name like 'lfw', got {name!r}")
    candidates = ALIASES.get(name, (name,))
    if data is not None:
        data = Path(data).expanduser()
        if not data.is_dir():
            raise FileNotFoundError(f"dataset folder not found: {data}")
        for cand in candidates:
            if (data / cand).is_dir():
                return data / cand
        if _is_lfw_root(data) or data.name in candidates or name not in ALIASES \
                or _is_dataset(data):
            return data
        raise FileNotFoundError(f"{data} holds neither {' nor '.join(candidates)}/ nor a "
                                "dataset (pairs.txt, <identity>/<image> folders or a listing)")
    for cand in candidates:
        found = paths.find_dataset(cand)
        if found is not None:
            return found
    if name == EMBEDDED:
        return embedded_dataset()
    where = ", ".join(str(r) for r in paths.data_roots())
    hint = ("run `facerobust data fetch lfw` (downloads LFW into the cache), or "
            if name in FETCHABLE else "")
    raise FileNotFoundError(
        f"dataset {name!r} not found (looked for {', '.join(candidates)} in {where}): "
        f"{hint}set {paths.DATA_ENV} to a folder holding {candidates[0]}/, or pass --data DIR")
