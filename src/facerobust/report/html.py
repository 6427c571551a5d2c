"""Render ``results.json`` into a self-contained ``report.html`` (figures embedded) and CSVs."""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from facerobust.report import figures


def pct(value: float | None) -> str:
    """Format a fraction as a percentage with one decimal, or '-' when missing."""
    return "-" if value is None else f"{100 * value:.1f}%"


def num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def eps_label(value: float, norm: str = "linf") -> str:
    if norm == "linf":
        return f"{value * 255:g}/255"
    return f"{value:g}"


def _data_uri(png: bytes | None) -> str | None:
    return None if png is None else "data:image/png;base64," + base64.b64encode(png).decode()


def _file_uri(path: Path) -> str | None:
    return _data_uri(path.read_bytes()) if path.is_file() else None


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("facerobust.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    env.filters.update(pct=pct, num=num, eps=eps_label)
    return env


def build_figures(results: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Draw every figure, save PNGs under ``out_dir/figures`` and return data URIs."""
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    uris: dict[str, Any] = {"attacks": {}, "defenses": {}, "examples": {}}

    def keep(name: str, png: bytes | None) -> str | None:
        if png is None:
            return None
        (fig_dir / f"{name}.png").write_bytes(png)
        return _data_uri(png)

    uris["accuracy"] = keep("accuracy_vs_epsilon",
                            figures.accuracy_vs_epsilon(results.get("accuracy_curves", [])))
    for attack in results.get("attacks", []):
        uris["attacks"][attack["key"]] = keep(f"success_{attack['key']}",
                                              figures.success_vs_epsilon(attack))
        if attack.get("examples"):
            uris["examples"][attack["key"]] = _file_uri(out_dir / attack["examples"])
    victim = results["models"]["victim"]
    clean = results["clean"].get(victim)
    if clean and clean.get("roc"):
        uris["roc"] = keep("roc", figures.roc_curves(clean, results.get("roc_attacked", []),
                                                     victim))
    uris["transfer"] = keep("transfer", figures.transfer_heatmap(results.get("transfer_matrix")))
    if results.get("minimal"):
        uris["minimal"] = keep("minimal", figures.minimal_histogram(results["minimal"]))
    for defense in results.get("defenses", []):
        uris["defenses"][defense["name"]] = keep(f"defense_{defense['slug']}",
                                                 figures.defense_curves(defense))
    return uris


def write_tables(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """CSV tables: clean figures, attack success per epsilon (victim and transfer), defenses."""
    table_dir = out_dir / "tables"
    table_dir.mkdir(parents=True, exist_ok=True)
    written = []
    path = table_dir / "clean.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "accuracy", "accuracy_std", "auc", "eer", "tar_at_far", "far",
                         "threshold_at_far", "identification_top1", "n_pairs"])
        for model, row in results["clean"].items():
            writer.writerow([model, row["accuracy"], row["accuracy_std"], row["auc"], row["eer"],
                             row["tar_at_far"], row["far"], row["threshold_at_far"],
                             row.get("identification_top1"), row["n_pairs"]])
    written.append(path)
    path = table_dir / "attacks.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["attack", "norm", "goal", "epsilon", "model", "role", "success", "n"])
        for atk in results.get("attacks", []):
            for i, eps in enumerate(atk["epsilons"]):
                writer.writerow([atk["attack"], atk["norm"], atk["goal"], eps, atk["victim"],
                                 "white-box", atk["success"][i], atk["n"]])
                for target, row in atk.get("transfer", {}).items():
                    writer.writerow([atk["attack"], atk["norm"], atk["goal"], eps, target,
                                     "transfer", row["success"][i], atk["n"]])
    written.append(path)
    if results.get("defenses"):
        path = table_dir / "defenses.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["defense", "epsilon", "undefended", "naive", "adaptive",
                             "clean_accuracy", "ms_per_image"])
            for d in results["defenses"]:
                for i, eps in enumerate(d["epsilons"]):
                    writer.writerow([d["name"], eps, d["undefended"][i], d["naive"][i],
                                     d["adaptive"][i], d["clean"]["accuracy"], d["ms_per_image"]])
        written.append(path)
    return written


def render_report(results_path: str | Path, out_html: str | Path | None = None) -> Path:
    """Render ``results.json`` into ``report.html`` beside it (or at ``out_html``)."""
    results_path = Path(results_path)
    if not results_path.is_file():
        raise FileNotFoundError(f"results file not found: {results_path}")
    try:
        results = json.loads(results_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{results_path}: not valid JSON: {err}") from err
    out_dir = results_path.parent
    target = Path(out_html) if out_html else out_dir / "report.html"
    uris = build_figures(results, out_dir)
    write_tables(results, out_dir)
    html = _environment().get_template("report.html.j2").render(r=results, fig=uris)
    target.write_text(html, encoding="utf-8")
    return target
