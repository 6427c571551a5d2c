"""Render the face-similarity study's JSON files into self-contained HTML pages.

One page per file kind: ``comparison.json`` (``facerobust compare``), adv-train's
``training.json`` (its judged before/after on (a)-(d)), a student card
``<name>.card.json`` (``facerobust distill``) and a defensive-distillation result
(``facerobust defensive-distill``). Each file is read through its typed loader
(:mod:`facerobust.eval.results_study`, schema version checked); the page shows only what the
JSON holds, figures embedded as data URIs, every rate with k/n and its 95% interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facerobust.eval.compare import comparison_figure
from facerobust.eval.results_study import load_card, load_comparison, load_defensive, load_training
from facerobust.eval.versioned import read_json
from facerobust.report import figures_study
from facerobust.report.html import data_uri, environment

FOLDER_FILES = {"comparison.json", "training.json"}  # a command's own output folder


def study_kind(doc: Any) -> str | None:
    """``comparison``, ``training``, ``card`` or ``defensive`` (None: not a study file)."""
    if not isinstance(doc, dict):
        return None
    if "heads" in doc and "temperature" in doc:
        return "defensive"
    if "transfer_teacher_to_student" in doc or "weights_sha256" in doc:
        return "card"
    if "loss_history" in doc and "holdout_identities" in doc:
        return "training"
    if "schema" in doc and isinstance(doc.get("models"), list) and "n_attacked" in doc:
        return "comparison"
    return None


def study_html_path(json_path: Path) -> Path:
    """``report.html`` in a command's own folder; ``<file>.html`` beside a named file (so two
    results in one folder never overwrite each other's page)."""
    json_path = Path(json_path)
    if json_path.name in FOLDER_FILES:
        return json_path.with_name("report.html")
    return json_path.with_suffix(".html")


def _comparison(path: Path) -> dict[str, Any]:

    res = load_comparison(path)
    return {"r": res.to_dict(), "fig": {"comparison": data_uri(comparison_figure(res))}}


def _card(path: Path) -> dict[str, Any]:

    card = load_card(path)
    doc = card.to_dict()
    return {"r": doc, "fig": {"comparison": data_uri(comparison_figure(card.comparison)),
                              "transfer": data_uri(figures_study.transfer_lines(doc)),
                              "loss": data_uri(figures_study.loss_curves(doc))}}


def _training(path: Path) -> dict[str, Any]:

    doc, judged = load_training(path)
    jd = judged.to_dict() if judged is not None else None
    return {"r": doc, "judged": jd,
            "fig": {"judged": data_uri(figures_study.hardening_bars(jd)) if jd else None}}


def _defensive(path: Path) -> dict[str, Any]:

    doc = load_defensive(path).to_dict()
    return {"r": doc, "fig": {"bars": data_uri(figures_study.defensive_bars(doc))}}


RENDERERS = {"comparison": _comparison, "card": _card, "training": _training,
             "defensive": _defensive}


def render_study(json_path: str | Path, out_html: str | Path | None = None) -> Path:
    """Render one study JSON file to HTML (default :func:`study_html_path`)."""
    json_path = Path(json_path)
    kind = study_kind(read_json(json_path, "result file"))
    if kind is None:
        raise ValueError(f"{json_path}: not a comparison, adv-train training.json, student card "
                         "or defensive-distillation result")
    context = RENDERERS[kind](json_path)
    html = environment().get_template(f"study_{kind}.html.j2").render(
        source=json_path.name, **context)
    target = Path(out_html) if out_html else study_html_path(json_path)
    target.write_text(html, encoding="utf-8")
    return target
