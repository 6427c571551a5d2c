"""Report rendering: figures, CSV tables and a self-contained HTML page, all from results.json.

The report computes nothing: every number it shows is read from ``results.json``.
"""

from facerobust.report.html import render_report

__all__ = ["render_report"]
