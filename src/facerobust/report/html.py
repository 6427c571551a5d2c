"""Render ``results.json`` into a self-contained ``report.html`` (figures embedded) and CSVs."""

from __future__ import annotations

import base64
import csv
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from facerobust.attacks.epsilons import format_epsilon
from facerobust.eval.results import load_results
from facerobust.eval.stats import Rate
from facerobust.report import figures


def pct(value: float | None) -> str:
    """Format a fraction as a percentage with one decimal, or '-' when missing."""
    return "-" if value is None else f"{100 * value:.1f}%"


def num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def rate(value: dict[str, Any] | None) -> str:
    """A rate object as ``"75.0% (9/12, 95% CI 47-91%, small sample)"``."""
    return "-" if value is None else Rate.from_dict(value).text()


def short_rate(value: dict[str, Any] | None) -> str:
    """A rate object as ``"75.0% (9/12)"`` for dense tables (the CI is in the figures)."""
    if value is None:
        return "-"
    return f"{100 * value['rate']:.1f}% ({value['k']}/{value['n']})"


def eps_label(value: float, norm: str = "linf") -> str:
    return format_epsilon(value, norm)


def data_uri(png: bytes | None) -> str | None:
    return None if png is None else "data:image/png;base64," + base64.b64encode(png).decode()


def _file_uri(run_dir: Path, relative: str) -> str | None:
    """Embed a PNG of this run folder; anything outside it is never read."""
    base = run_dir.resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base) or path.suffix.lower() != ".png" or not path.is_file():
        return None
    return data_uri(path.read_bytes())


def environment() -> Environment:
    env = Environment(loader=PackageLoader("facerobust.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    env.filters.update(pct=pct, num=num, eps=eps_label, rate=rate, short_rate=short_rate)
    return env


def build_figures(results: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Draw every figure, save PNGs under ``out_dir/figures`` and return data URIs."""
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    uris: dict[str, Any] = {"attacks": {}, "defenses": {}, "examples": {}, "detectors": {}}

    def keep(name: str, png: bytes | None) -> str | None:
        if png is None:
            return None
        (fig_dir / f"{name}.png").write_bytes(png)
        return data_uri(png)

    uris["accuracy"] = keep("accuracy_vs_epsilon",
                            figures.accuracy_vs_epsilon(results.get("accuracy_curves", [])))
    for attack in results.get("attacks", []):
        uris["attacks"][attack["key"]] = keep(f"success_{attack['key']}",
                                              figures.success_vs_epsilon(attack))
        example = _file_uri(out_dir, attack["examples"]) if attack.get("examples") else None
        if example is not None:
            uris["examples"][attack["key"]] = example
    victim = results["models"]["victim"]
    clean = results["clean"].get(victim)
    if clean and clean.get("roc"):
        uris["roc"] = keep("roc", figures.roc_curves(clean, results.get("roc_attacked", []),
                                                     victim))
    uris["transfer"] = keep("transfer", figures.transfer_heatmap(results.get("transfer_matrix")))
    uris["source_target"] = [keep(f"transfer_{m['slug']}", figures.transfer_heatmap(m))
                             for m in results.get("source_target", [])]
    if results.get("minimal"):
        uris["minimal"] = keep("minimal", figures.minimal_histogram(results["minimal"]))
    for defense in results.get("defenses", []):
        uris["defenses"][defense["name"]] = keep(f"defense_{defense['slug']}",
                                                 figures.defense_curves(defense))
    for unit in results.get("detectors", []):
        uris["detectors"][unit["key"]] = keep(f"roc_{unit['key']}", figures.detector_rocs(unit))
    return uris


def _rate_cells(value: dict[str, Any] | None) -> list[Any]:
    if value is None:
        return ["", "", "", "", ""]
    return [value["rate"], value["k"], value["n"], value["ci95"][0], value["ci95"][1]]


def _csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


RATE_HEADER = ["rate", "k", "n", "ci95_low", "ci95_high"]


def write_tables(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """CSV tables: clean figures, attack success per epsilon (victim and transfer), defenses;
    every rate with its count and 95% interval."""
    table_dir = out_dir / "tables"
    table_dir.mkdir(parents=True, exist_ok=True)
    written = [_csv(table_dir / "clean.csv",
                    ["model", "accuracy", "accuracy_std", "auc", "eer", "far", "threshold_at_far",
                     "n_pairs", *[f"tar_at_far_{h}" for h in RATE_HEADER],
                     *[f"identification_top1_{h}" for h in RATE_HEADER]],
                    [[m, c["accuracy"], c["accuracy_std"], c["auc"], c["eer"], c["far"],
                      c["threshold_at_far"], c["n_pairs"], *_rate_cells(c["tar_at_far"]),
                      *_rate_cells(c.get("identification_top1"))]
                     for m, c in results["clean"].items()])]
    rows = []
    for atk in results.get("attacks", []):
        for i, eps in enumerate(atk["epsilons"]):
            rows.append([atk["attack"], atk["norm"], atk["goal"], eps, atk["epsilon_labels"][i],
                         atk["victim"], "white-box", *_rate_cells(atk["success"][i])])
            for target, row in atk.get("transfer", {}).items():
                rows.append([atk["attack"], atk["norm"], atk["goal"], eps,
                             atk["epsilon_labels"][i], target, "transfer",
                             *_rate_cells(row["success"][i])])
    written.append(_csv(table_dir / "attacks.csv", ["attack", "norm", "goal", "epsilon",
                                                    "epsilon_label", "model", "role",
                                                    *RATE_HEADER], rows))
    if results.get("defenses"):
        rows = []
        for d in results["defenses"]:
            for i, eps in enumerate(d["epsilons"]):
                for column in ("undefended", "naive", "direct", "adaptive", "blackbox",
                               "worst_case"):
                    if d.get(column):
                        rows.append([d["name"], d["goal"], d["norm"], eps,
                                     d["epsilon_labels"][i], column,
                                     *_rate_cells(d[column][i]), d["clean"]["rate"],
                                     d["ms_per_image"]])
        written.append(_csv(table_dir / "defenses.csv",
                            ["defense", "goal", "norm", "epsilon", "epsilon_label", "attack",
                             *RATE_HEADER, "clean", "ms_per_image"], rows))
    if results.get("detectors"):
        rows = [[unit["key"], res["label"], row["group"], row["auroc"], *row["auroc_ci95"],
                 row["n_clean"], row["n_adversarial"], *_rate_cells(row["detected"])]
                for unit in results["detectors"] for res in unit["results"]
                for row in res["per_attack"]]
        written.append(_csv(table_dir / "detectors.csv",
                            ["unit", "detector", "attack", "auroc", "auroc_low", "auroc_high",
                             "n_clean", "n_adversarial",
                             *[f"detected_{h}" for h in RATE_HEADER]], rows))
    return written


def render_report(results_path: str | Path, out_html: str | Path | None = None) -> Path:
    """Render ``results.json`` into ``report.html`` beside it (or at ``out_html``)."""
    results_path = Path(results_path)
    results = load_results(results_path)
    out_dir = results_path.parent
    target = Path(out_html) if out_html else out_dir / "report.html"
    uris = build_figures(results, out_dir)
    write_tables(results, out_dir)
    html = environment().get_template("report.html.j2").render(r=results, fig=uris)
    target.write_text(html, encoding="utf-8")
    return target
