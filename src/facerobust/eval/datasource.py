"""The one dataset opener of the study commands: a name or folder, any layout (``lfw``,
``folders``, ``listing``; :mod:`facerobust.data.sources`), the dataset's own pairs or a
generated 10-fold protocol, and the verification sample every study measures on.

>>> ds = DataSource("vggface2-test", layout="folders").open()     # doctest: +SKIP
>>> sample = verification_sample(ds, limit_pairs=600, seed=0)    # doctest: +SKIP
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facerobust.data.chips import load_chips
from facerobust.data.lfw import Pair
from facerobust.data.resolve import dataset_protocol, default_dataset, resolve_dataset
from facerobust.data.sources import Dataset, open_dataset
from facerobust.eval.clean import protocol_pairs
from facerobust.eval.tasks import PairSample, pairs_to_indices

log = logging.getLogger("facerobust.study")


@dataclass(frozen=True)
class DataSource:
    """Which dataset a study runs on (the ``[data]`` keys of an audit): ``dataset`` looked up
    under ``data`` / ``$FACEROBUST_DATA`` / the cache (:func:`default_dataset` when not
    given), its ``layout`` (auto-detected), a ``listing`` file and a ``pairs`` protocol file."""

    dataset: str = field(default_factory=default_dataset)
    data: Path | None = None
    layout: str = "auto"
    listing: str = ""
    pairs: str = ""

    def root(self) -> Path:
        return resolve_dataset(self.dataset, self.data)

    def open(self, root: Path | None = None, logger: logging.Logger = log) -> Dataset:
        """The dataset (at ``root`` when given, else :meth:`root`), its warnings and missing
        listed files logged to ``logger`` (the audit passes its own: they land in audit.log)."""
        dataset = open_dataset(root or self.root(), layout=self.layout,
                               listing=self.listing or None, pairs_file=self.pairs or None,
                               protocol=dataset_protocol(self.dataset))
        for warning in dataset.warnings:
            logger.warning("%s", warning)
        for path in dataset.missing:
            logger.warning("listed but missing: %s", path)
        return dataset


def as_dataset(source: Dataset | DataSource | Path | str) -> Dataset:
    """A :class:`Dataset` from an opened one, a :class:`DataSource` or a dataset folder."""
    if isinstance(source, Dataset):
        return source
    if isinstance(source, DataSource):
        return source.open()
    return open_dataset(Path(source))


def identity_of(dataset: Dataset) -> dict[Path, str]:
    """Image file -> its identity (the listing's label, not the parent folder's name)."""
    return {p: name for name, files in dataset.people.items() for p in files}


@dataclass(frozen=True)
class VerificationSample:
    """The pairs a study measures on and their aligned chips, loaded once: the chosen pairs,
    where they came from (the protocol file or ``generated``), the chips and the index pairs
    of those with both images aligned (``dropped`` without)."""

    dataset: Dataset
    chosen: list[Pair]
    source: str
    chipset: Any  # facerobust.data.chips.ChipSet
    pairs: PairSample
    dropped: int


def verification_sample(dataset: Dataset, *, limit_pairs: int | None, seed: int,
                        progress: bool = True) -> VerificationSample:
    """The dataset's pairs (spread over folds, or a generated protocol) with their chips."""
    chosen, source = protocol_pairs(dataset, limit_pairs, seed)
    paths = list(dict.fromkeys(p for pair in chosen for p in (pair.path_a, pair.path_b)))
    chipset = load_chips(paths, cache=True, progress=progress)
    pairs, dropped = pairs_to_indices(chosen, chipset.index)
    if len(pairs) == 0 or pairs.same.all() or not pairs.same.any():
        raise ValueError(f"{dataset.root}: the usable pairs lack matched or mismatched pairs")
    return VerificationSample(dataset, chosen, source, chipset, pairs, dropped)


@dataclass(frozen=True)
class ImpostorPair:
    """An attacker photo, the victim's photo and the victim's identity."""

    photo: Path
    victim_photo: Path
    victim: str


def impostor_pairs(dataset: Dataset, n: int, seed: int) -> list[ImpostorPair]:
    """``n`` impostor pairs of the dataset's protocol (or a generated one), in a seeded
    shuffle (the same draw as before for an LFW copy)."""
    chosen, _ = protocol_pairs(dataset, None, seed)
    owner = identity_of(dataset)
    pairs = [ImpostorPair(p.path_a, p.path_b, owner.get(p.path_b, p.path_b.parent.name))
             for p in chosen if not p.same]
    if not pairs:
        raise ValueError(f"{dataset.root}: the protocol has no impostor pairs")
    random.Random(seed).shuffle(pairs)
    return pairs[:n]
