"""A study command as a one-unit run on the run store: the one ``--out`` policy of
``compare``, ``adv-train``, ``distill``, ``defensive-distill``, ``train-head``, ``eval-clean``,
``attack-gate`` and ``gate-photo-attack``.

``--out DIR`` is a run folder: the study's typed result is saved atomically as the unit
``DIR/units/study.json`` with the fingerprint of its settings (every option that changes the
result plus the dataset's identity), then written as ``DIR/results.json``. Re-running the same
command into ``DIR`` with the same settings reuses the stored result (and the model files the
study wrote, which must still exist) and recomputes nothing; changed settings recompute. A
``results.json`` not written by facerobust is never overwritten without ``force``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from facerobust.eval.config import settings_hash
from facerobust.eval.datasource import DataSource
from facerobust.eval.results_file import KindUnit, read_document, write_result_file
from facerobust.eval.store import RUN_MARKER, RunLock, RunStore, prepare_output_folder

K = TypeVar("K", bound=KindUnit)
STUDY_KEY = "study"  # the one unit of a study's run folder: units/study.json


@dataclass(frozen=True)
class RunOutput:
    """Where a study command writes: ``results`` (the typed result file, rendered beside it by
    ``facerobust report``) inside ``folder``; ``legacy`` for the old ``--out FILE`` form."""

    folder: Path
    results: Path
    legacy: bool = False

    def file(self, name: str) -> Path:
        """An output file of the run (a model's weights, a figure) inside its folder."""
        return self.folder / name


@dataclass(frozen=True)
class StudyRun(Generic[K]):
    """A study's typed result, its file, and whether a finished run's result was reused."""

    result: K
    results: Path
    reused: bool


def source_identity(source: DataSource) -> dict[str, Any]:
    """The dataset a study runs on, for its fingerprint: the options and the resolved folder."""
    return {**asdict(source), "data": str(source.data or ""),
            "root": str(source.root().resolve())}


def _plain(value: Any) -> Any:
    """Settings as JSON values: option dataclasses as their fields, paths as text."""
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def study_fingerprint(kind: str, settings: Mapping[str, Any]) -> str:
    """Hash of a study's kind and every setting that changes its result."""
    return settings_hash([STUDY_KEY, kind, _plain(settings)])


def check_study_folder(folder: Path, *, force: bool = False) -> None:
    """Refuse (unless ``force``) a folder whose ``results.json`` facerobust did not write
    (no run marker and not in the result wrapper): the user's files are never overwritten."""
    results = folder / "results.json"
    if force or (folder / RUN_MARKER).is_file() or not results.exists():
        return
    try:
        doc = read_document(results)
    except (OSError, ValueError):
        doc = {}
    if "kind" not in doc or "schema_version" not in doc:
        raise ValueError(f"--out {folder} holds a results.json that is not from a facerobust "
                         "run; choose another folder or pass --force to overwrite it")


def run_study(out: RunOutput, cls: type[K], settings: Mapping[str, Any],
              compute: Callable[[], K], *, force: bool = False,
              files: tuple[Path, ...] = ()) -> StudyRun[K]:
    """The study's result in ``out``: reused when ``out`` holds a finished run of ``cls`` with
    the same ``settings`` and every file of ``files``; else ``compute()`` (saved as the unit,
    then written as ``results.json``). The old ``--out FILE`` form just computes."""
    if out.legacy:
        result = compute()
        write_result_file(out.results, result)
        return StudyRun(result, out.results, reused=False)
    check_study_folder(out.folder, force=force)
    folder = prepare_output_folder(out.folder, force=True)
    lock = RunLock(folder)
    lock.acquire()
    try:
        return _reuse_or_compute(RunStore(folder), out.results, cls, settings, compute, files)
    finally:
        lock.release()


def _reuse_or_compute(store: RunStore, results: Path, cls: type[K],
                      settings: Mapping[str, Any], compute: Callable[[], K],
                      files: tuple[Path, ...]) -> StudyRun[K]:
    fingerprint = study_fingerprint(cls.KIND, settings)
    missing = [p for p in files if not p.is_file()]
    if store.has(STUDY_KEY, fingerprint) and not missing:
        result = cls.from_dict(store.load(STUDY_KEY), where=f"{store.out}/units/study.json")
        write_result_file(results, result)
        print(f"reused the finished {cls.KIND} run in {store.out} (same settings, "
              f"fingerprint {fingerprint}): nothing recomputed", file=sys.stderr)
        return StudyRun(result, results, reused=True)
    if store.has(STUDY_KEY, fingerprint):
        print(f"{missing[0]} is missing: recomputing the {cls.KIND} run in {store.out}",
              file=sys.stderr)
    elif (store.out / "units" / f"{STUDY_KEY}.json").is_file():
        print(f"the settings changed since the finished {cls.KIND} run in {store.out}: "
              "recomputing it", file=sys.stderr)
    result = compute()
    store.save(STUDY_KEY, fingerprint, result.to_dict())
    write_result_file(results, result)
    return StudyRun(result, results, reused=False)
