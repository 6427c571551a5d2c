"""Check and clear the caches under ``$FACEROBUST_CACHE``: fetched weights (against the
sha256 recorded at fetch), converted dlib weights (against the sha256 recorded when
written) and aligned chips (each entry carries the hash of its pixels and its settings).

>>> from facerobust.cache import verify_cache
>>> report = verify_cache(fix=True)      # doctest: +SKIP
>>> report.damaged                        # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from facerobust import paths
from facerobust.data.chip_cache import verify_chip_cache
from facerobust.models.dlib_resnet import cache_entry_intact
from facerobust.models.fetch import RECORD, WeightsIntegrityError, verified_file

CLEARABLE = ("chips", "weights", "datasets")


@dataclass
class CacheReport:
    checked: dict[str, int] = field(default_factory=dict)  # kind -> entries checked
    damaged: list[str] = field(default_factory=list)  # "path: why"
    removed: list[str] = field(default_factory=list)


def _verify_npm(root: Path, report: CacheReport, fix: bool) -> None:


    for record in sorted(root.glob(f"*/{RECORD}")):
        folder = record.parent
        try:
            files = json.loads(record.read_text(encoding="utf-8")).get("files_sha256", {})
        except (OSError, ValueError) as err:
            report.damaged.append(f"{record}: unreadable ({err})")
            files = {}
        bad = False
        for rel in files:
            report.checked["fetched weight files"] = report.checked.get(
                "fetched weight files", 0) + 1
            try:
                verified_file(folder, rel, full=True)
            except (WeightsIntegrityError, OSError) as err:
                report.damaged.append(str(err))
                bad = True
        if bad and fix:
            shutil.rmtree(folder)
            report.removed.append(f"{folder} (run `facerobust models fetch all`)")


def _verify_converted(root: Path, report: CacheReport, fix: bool) -> None:

    for entry in sorted(root.glob("dlib-resnet-v*.pt")):
        report.checked["converted weights"] = report.checked.get("converted weights", 0) + 1
        if not cache_entry_intact(entry, full=True):
            report.damaged.append(f"{entry}: sha256 differs from the one recorded when written")
            if fix:
                entry.unlink(missing_ok=True)
                report.removed.append(f"{entry} (rebuilt from the .dat on next load)")


def verify_cache(*, fix: bool = False) -> CacheReport:
    """Check every cache entry; with ``fix`` remove the damaged ones (they are rebuilt or
    re-fetched on next use)."""
    report = CacheReport()
    weights = paths.cache_dir() / "weights"
    if weights.is_dir():
        _verify_npm(weights / "npm", report, fix)
        _verify_converted(weights, report, fix)
    chips = paths.cache_dir() / "chips"
    if chips.is_dir():

        checked, damaged = verify_chip_cache(chips, fix=fix)
        report.checked["chips"] = checked
        report.damaged += damaged
        if fix:
            report.removed += damaged
    return report


def clear_cache(what: list[str]) -> list[Path]:
    """Remove the named cache folders (``chips``, ``weights``, ``datasets``)."""
    unknown = [w for w in what if w not in CLEARABLE]
    if unknown or not what:
        raise ValueError(f"cache clear takes one or more of {', '.join(CLEARABLE)}, got "
                         f"{', '.join(what) or 'nothing'}")
    removed = []
    for name in what:
        folder = paths.cache_dir() / name
        if folder.is_dir():
            shutil.rmtree(folder)
            removed.append(folder)
    return removed
