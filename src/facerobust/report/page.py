"""What every report page shares: the Jinja environment and its filters (rates with k/n and
their 95% interval, the interval drawn as a bar), embedded PNGs and CSV writing."""

from __future__ import annotations

import base64
import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from facerobust.attacks.threat import format_epsilon
from facerobust.eval.stats import Rate

RATE_HEADER = ["rate", "k", "n", "ci95_low", "ci95_high"]


def as_rate(value: Rate | Mapping[str, Any]) -> Rate:
    return value if isinstance(value, Rate) else Rate.from_dict(value)


def pct(value: float | None) -> str:
    """Format a fraction as a percentage with one decimal, or '-' when missing."""
    return "-" if value is None else f"{100 * value:.1f}%"


def num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def rate(value: Rate | Mapping[str, Any] | None) -> str:
    """A rate as ``"75.0% (9/12, 95% CI 47-91%, small sample)"``."""
    return "-" if value is None else as_rate(value).text()


def short_rate(value: Rate | Mapping[str, Any] | None) -> str:
    """A rate as ``"75.0% (9/12)"`` for dense tables (the CI is in the figures)."""
    if value is None:
        return "-"
    r = as_rate(value)
    return f"{100 * r.rate:.1f}% ({r.k}/{r.n})"


def ci_bar(value: Rate | Mapping[str, Any] | None) -> Markup:
    """The rate's 95% interval as a horizontal bar on 0-100% with a tick at the rate."""
    if value is None or as_rate(value).n == 0:
        return Markup('<span class="bar empty"></span>')
    r = as_rate(value)
    low, high = r.ci95
    return Markup(
        f'<span class="bar" title="95% CI {100 * low:.0f}-{100 * high:.0f}%">'
        f'<span class="ci" style="left:{100 * low:.1f}%;width:{100 * (high - low):.1f}%">'
        f'</span><span class="pt" style="left:{100 * r.rate:.1f}%"></span></span>')


def eps_label(value: float, norm: str = "linf") -> str:
    return format_epsilon(value, norm)


def data_uri(png: bytes | None) -> str | None:
    return None if png is None else "data:image/png;base64," + base64.b64encode(png).decode()


def file_uri(run_dir: Path, relative: str) -> str | None:
    """Embed a PNG of this run folder; anything outside it is never read."""
    base = run_dir.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base) or path.suffix.lower() != ".png" or not path.is_file():
        return None
    return data_uri(path.read_bytes())


def environment() -> Environment:
    env = Environment(loader=PackageLoader("facerobust.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    env.filters.update(pct=pct, num=num, eps=eps_label, rate=rate, short_rate=short_rate,
                       ci_bar=ci_bar)
    return env


def rate_cells(value: Rate | None) -> list[Any]:
    if value is None:
        return ["", "", "", "", ""]
    low, high = value.ci95
    return [value.rate, value.k, value.n, low, high]


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path
