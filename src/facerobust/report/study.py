"""The face-similarity studies' kinds, rendered into self-contained HTML pages.

``comparison.json`` (``facerobust compare``), adv-train's ``training.json`` (its judged
before/after on (a)-(d)), a student card ``<name>.card.json`` (``facerobust distill``) and a
defensive-distillation result (``facerobust defensive-distill``). Each is recognised by its
shape and read through its typed loader (:mod:`facerobust.eval.results_study`, its own
version checked); the page shows only what the file holds, every rate with k/n and its 95%
interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facerobust.eval.compare import COMPARE_SCHEMA, Comparison, comparison_figure
from facerobust.eval.results_study import (
    CARD_SCHEMA,
    DEFENSIVE_SCHEMA,
    DefensiveResult,
    StudentCard,
    judged_from_training,
)
from facerobust.eval.stats import Rate
from facerobust.eval.versioned import from_versioned
from facerobust.report import figures_study
from facerobust.report.kind_base import Legacy, Loaded, ReportKind
from facerobust.report.page import data_uri, environment

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


def _page(name: str, loaded: Loaded, **context: Any) -> str:
    return environment().get_template(f"study_{name}.html.j2").render(
        source=loaded.source.name, **context)


def _comparison(loaded: Loaded, json_path: Path, html_path: Path) -> str:
    res: Comparison = loaded.result
    return _page("comparison", loaded, r=res.to_dict(),
                 fig={"comparison": data_uri(comparison_figure(res))})


def _card(loaded: Loaded, json_path: Path, html_path: Path) -> str:
    card: StudentCard = loaded.result
    doc = card.to_dict()
    return _page("card", loaded, r=doc,
                 fig={"comparison": data_uri(comparison_figure(card.comparison)),
                      "transfer": data_uri(figures_study.transfer_lines(doc)),
                      "loss": data_uri(figures_study.loss_curves(doc))})


def _training(loaded: Loaded, json_path: Path, html_path: Path) -> str:
    doc: dict[str, Any] = loaded.result
    judged = judged_from_training(doc, str(json_path))
    jd = judged.to_dict() if judged is not None else None
    return _page("training", loaded, r=doc, judged=jd,
                 fig={"judged": data_uri(figures_study.hardening_bars(jd)) if jd else None})


def _defensive(loaded: Loaded, json_path: Path, html_path: Path) -> str:
    doc = loaded.result.to_dict()
    return _page("defensive", loaded, r=doc,
                 fig={"bars": data_uri(figures_study.defensive_bars(doc))})


def _read_training(doc: dict[str, Any], source: str) -> dict[str, Any]:
    judged_from_training(doc, source)  # checks the judged block's version and shape
    for key in ("model", "epochs", "eps", "before", "after"):
        if key not in doc:
            raise ValueError(f"{source}: missing key {key!r} (not an adv-train training.json)")
    return doc


def _comparison_rates(res: Comparison) -> dict[str, Rate]:
    out: dict[str, Rate] = {}
    for m in res.models:
        out[f"{m.model}: correct decisions"] = m.correct
        out[f"{m.model}: clean error (attacked subset)"] = m.clean_error
        out.update({f"{m.model}: FGSM error @ {p.eps:g}": p.error for p in m.fgsm})
    return out


def _defensive_rates(res: DefensiveResult) -> dict[str, Rate]:
    out: dict[str, Rate] = {}
    for name, head in res.heads.items():
        for key in figures_study.DEFENSIVE_ROWS:
            value = getattr(head, key)
            if value is not None:
                out[f"{name} head: {key}"] = value
    return out


def _versioned(cls: Any, what: str, expected: int, key: str) -> Any:
    return lambda doc, source: from_versioned(cls, doc, source, what=what, expected=expected,
                                              key=key)


def _shape(name: str) -> Any:
    return lambda doc: study_kind(doc) == name


STUDY_KINDS = (
    ReportKind(name="comparison", title="Face-similarity comparison",
               read=_versioned(Comparison, "comparison", COMPARE_SCHEMA, "schema"),
               render=_comparison, rates=_comparison_rates, html_path=study_html_path,
               legacy=Legacy(_shape("comparison"), COMPARE_SCHEMA, "schema",
                             _versioned(Comparison, "comparison", COMPARE_SCHEMA, "schema"),
                             "a comparison's")),
    ReportKind(name="student-card", title="Distilled student card",
               read=_versioned(StudentCard, "student card", CARD_SCHEMA, "schema_version"),
               render=_card, html_path=study_html_path,
               legacy=Legacy(_shape("card"), CARD_SCHEMA, "schema_version",
                             _versioned(StudentCard, "student card", CARD_SCHEMA,
                                        "schema_version"), "a student card's")),
    ReportKind(name="adv-train", title="Adversarial training", read=_read_training,
               render=_training, html_path=study_html_path,
               legacy=Legacy(_shape("training"), None, "schema_version", _read_training,
                             "adv-train's")),
    ReportKind(name="defensive-distill", title="Defensive distillation",
               read=_versioned(DefensiveResult, "defensive-distillation result",
                               DEFENSIVE_SCHEMA, "schema_version"),
               render=_defensive, rates=_defensive_rates, html_path=study_html_path,
               legacy=Legacy(_shape("defensive"), DEFENSIVE_SCHEMA, "schema_version",
                             _versioned(DefensiveResult, "defensive-distillation result",
                                        DEFENSIVE_SCHEMA, "schema_version"),
                             "a defensive-distillation result's")),
)
