"""``facerobust report --compare RUN_A RUN_B``: two runs side by side (before/after
hardening, two models): ``compare.json`` (typed), ``compare.csv`` and a self-contained
``compare.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facerobust.eval.results_file import KindUnit, write_result_file
from facerobust.eval.run_compare import RunComparison, compare_rates
from facerobust.report.kind_base import Loaded
from facerobust.report.kinds import KINDS, load_result, render
from facerobust.report.page import RATE_HEADER, rate_cells, write_csv


def _as_loaded(run: Loaded | KindUnit, name: str) -> Loaded:
    if isinstance(run, Loaded):
        return run
    kind = KINDS.get(run.KIND)
    if kind is None:
        raise TypeError(f"{name}: {type(run).__name__} is not a registered result kind")
    return Loaded(kind, run, Path(name))


def compare_results(a: Loaded | KindUnit, b: Loaded | KindUnit, *, name_a: str = "A",
                    name_b: str = "B") -> RunComparison:
    """Every rate of ``a`` and ``b`` paired by label, with its difference and test."""
    la, lb = _as_loaded(a, name_a), _as_loaded(b, name_b)
    return compare_rates(la.kind.rates(la.result), lb.kind.rates(lb.result),
                         run_a=name_a, run_b=name_b, kind_a=la.kind.name,
                         kind_b=lb.kind.name)


def _run_file(path: Path) -> Path:
    return path / "results.json" if path.is_dir() else path


def write_comparison(comparison: RunComparison, out: Path) -> Path:
    """``compare.json``, ``compare.csv`` and ``compare.html`` in ``out``; returns the page."""
    out.mkdir(parents=True, exist_ok=True)
    target = write_result_file(out / "compare.json", comparison)
    rows: list[list[Any]] = [
        [r.label, "both", *rate_cells(r.a), *rate_cells(r.b), r.difference, r.p_value, r.test,
         r.significant] for r in comparison.rows]
    rows += [[label, "A only", *rate_cells(v), *rate_cells(None), "", "", "", ""]
             for label, v in comparison.only_a.items()]
    rows += [[label, "B only", *rate_cells(None), *rate_cells(v), "", "", "", ""]
             for label, v in comparison.only_b.items()]
    write_csv(out / "compare.csv", ["rate", "present", *[f"a_{h}" for h in RATE_HEADER],
                                    *[f"b_{h}" for h in RATE_HEADER], "difference", "p_value",
                                    "test", "significant"], rows)
    return render(target)


def compare_runs(run_a: str | Path, run_b: str | Path, out: str | Path | None = None) -> Path:
    """Compare two result files (or run folders); default ``out``: ``RUN_B``'s folder /
    ``compare``. Returns the path of ``compare.html``."""
    a, b = _run_file(Path(run_a)), _run_file(Path(run_b))
    comparison = compare_results(load_result(a), load_result(b), name_a=str(a),
                                 name_b=str(b))
    return write_comparison(comparison, Path(out) if out else b.parent / "compare")
