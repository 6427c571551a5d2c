"""What a kind of result file declares (:class:`ReportKind`): how it is read into its typed
result, what its report opens with, which rates ``--compare`` pairs up, how its page is
rendered; the registry is :mod:`facerobust.report.kinds`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facerobust.eval.results_file import VERDICT_RULE, KindUnit, Overview
from facerobust.eval.stats import Rate
from facerobust.report.page import environment


def _beside(json_path: Path) -> Path:
    return json_path.with_name("report.html")


def _no_overview(result: Any) -> Overview:
    return Overview([], [])


def _no_rates(result: Any) -> dict[str, Rate]:
    return {}


@dataclass(frozen=True)
class Legacy:
    """A file written before the versioned wrapper: recognised by its shape, read when its own
    version (under ``key``) is ``version``."""

    shape: Callable[[dict[str, Any]], bool]
    version: int | None  # None: the file carried no version
    key: str
    convert: Callable[[dict[str, Any], str], Any]
    what: str


@dataclass(frozen=True)
class ReportKind:
    """One kind of result file and everything the report needs of it."""

    name: str
    title: str
    read: Callable[[dict[str, Any], str], Any]  # a schema-3 document -> the typed result
    render: Callable[[Any, Path, Path], str]  # (Loaded, json file, html file) -> the page
    overview: Callable[[Any], Overview] = _no_overview
    rates: Callable[[Any], dict[str, Rate]] = _no_rates  # label -> rate, for --compare
    legacy: Legacy | None = None
    html_path: Callable[[Path], Path] = _beside


def typed_reader(cls: type[KindUnit]) -> Callable[[dict[str, Any], str], Any]:
    return lambda doc, source: cls.from_dict(doc, where=source)


@dataclass(frozen=True)
class Loaded:
    """A result file read through its kind."""

    kind: ReportKind
    result: Any
    source: Path
    overview: Overview = field(default_factory=lambda: Overview([], []))


def typed_page(template: str, title: str) -> Callable[[Loaded, Path, Path], str]:
    """The renderer of a study page: ``template`` with the typed result as ``r``, its
    ``title``, overview, source file name and the verdict rule."""
    def render(loaded: Loaded, json_path: Path, html_path: Path) -> str:
        return environment().get_template(template).render(
            r=loaded.result, title=title, overview=loaded.overview, source=json_path.name,
            verdict_rule=VERDICT_RULE)
    return render
