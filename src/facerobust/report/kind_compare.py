"""The ``run-comparison`` kind: ``compare.json`` of ``facerobust report --compare``."""

from __future__ import annotations

from pathlib import Path

from facerobust.eval.results_file import VERDICT_RULE
from facerobust.eval.run_compare import RunComparison
from facerobust.report.kind_base import Loaded, ReportKind, typed_reader
from facerobust.report.page import environment


def render(loaded: Loaded, json_path: Path, html_path: Path) -> str:
    return environment().get_template("compare.html.j2").render(
        c=loaded.result, source=json_path.name, overview=loaded.overview,
        verdict_rule=VERDICT_RULE)


def compare_html_path(json_path: Path) -> Path:
    return json_path.with_name("compare.html")


RUN_COMPARISON = ReportKind(name=RunComparison.KIND, title="Two runs compared",
                            read=typed_reader(RunComparison), render=render,
                            html_path=compare_html_path)
