"""Render any result file facerobust writes into a self-contained ``report.html`` (figures
embedded) and, for an audit, CSV tables: the kind in the file's wrapper picks the page
(:mod:`facerobust.report.kinds`)."""

from __future__ import annotations

from pathlib import Path

from facerobust.report.kinds import render


def render_report(results_path: str | Path, out_html: str | Path | None = None) -> Path:
    """Render ``results_path`` into ``report.html`` beside it (or at ``out_html``)."""
    return render(results_path, out_html)
