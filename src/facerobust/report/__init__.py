"""Report rendering: figures, CSV tables and a self-contained HTML page for every result file,
and two runs compared side by side. The report computes nothing: every number it shows is read
from the typed results (derived figures are computed before the file is written).
"""

from facerobust.report.html import render_report
from facerobust.report.kinds import load_result

__all__ = ["load_result", "render_report"]
