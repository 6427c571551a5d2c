"""The study commands' kinds, rendered into self-contained HTML pages.

``comparison`` (``facerobust compare``), ``adv-train`` (its judged before/after on (a)-(d)),
``student-card`` (``facerobust distill``), ``defensive-distill``, ``eval-clean`` and
``train-head``: each a kind of the one versioned wrapper, read through its typed loader
(:mod:`facerobust.eval.results_study`); files written before the wrapper (``comparison.json``,
``training.json``, ``<name>.card.json``, a defensive-distillation JSON, each under its own
schema 1) are recognised by their shape and converted. The page shows only what the file
holds, every rate with k/n and its 95% interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facerobust.eval.compare import Comparison, comparison_figure
from facerobust.eval.results_file import SCHEMA_VERSION, KindUnit
from facerobust.eval.results_study import (
    AdvTrainResult,
    CleanEvalResult,
    DefensiveResult,
    HeadTrainingResult,
    StudentCard,
    from_study_document,
    judged_from_training,
    training_document,
)
from facerobust.eval.stats import Rate
from facerobust.report import figures_study
from facerobust.report.kind_base import Legacy, Loaded, ReportKind
from facerobust.report.page import data_uri, environment

# a command's own output folder (results.json; before the wrapper: the other two)
FOLDER_FILES = {"results.json", "comparison.json", "training.json"}


WRAPPED = {"comparison": "comparison", "student-card": "card", "adv-train": "training",
           "defensive-distill": "defensive", "eval-clean": "clean", "train-head": "head"}


def study_kind(doc: Any) -> str | None:
    """``comparison``, ``training``, ``card``, ``defensive``, ``clean`` or ``head`` (None: not
    a study file)."""
    if not isinstance(doc, dict):
        return None
    if "kind" in doc:
        return WRAPPED.get(str(doc["kind"]))
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
        source=loaded.source.name, schema=SCHEMA_VERSION, **context)


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


def _clean(loaded: Loaded, json_path: Path, html_path: Path) -> str:
    return _page("clean", loaded, r=loaded.result.result)


def _head(loaded: Loaded, json_path: Path, html_path: Path) -> str:
    return _page("head", loaded, r=loaded.result)


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


def _reader(cls: type[KindUnit], what: str) -> Any:
    return lambda doc, source: from_study_document(cls, doc, source, what=what)


def _shape(name: str) -> Any:
    return lambda doc: "kind" not in doc and study_kind(doc) == name


def _kind(cls: type[KindUnit], title: str, what: str, render: Any, *, shape: str = "",
          key: str = "schema_version", **more: Any) -> ReportKind:
    """A study kind; ``shape`` names how a file from before the wrapper is recognised."""
    read = _reader(cls, what)
    legacy = Legacy(_shape(shape), 1, key, read, f"a {what}'s") if shape else None
    return ReportKind(name=cls.KIND, title=title, read=read, render=render,
                      html_path=study_html_path, legacy=legacy, **more)


STUDY_KINDS = (
    _kind(Comparison, "Face-similarity comparison", "comparison", _comparison,
          shape="comparison", key="schema", rates=_comparison_rates),
    _kind(StudentCard, "Distilled student card", "student card", _card, shape="card"),
    ReportKind(name=AdvTrainResult.KIND, title="Adversarial training", read=training_document,
               render=_training, html_path=study_html_path,
               legacy=Legacy(_shape("training"), None, "schema_version", training_document,
                             "adv-train's")),
    _kind(DefensiveResult, "Defensive distillation", "defensive-distillation result",
          _defensive, shape="defensive", rates=_defensive_rates),
    _kind(CleanEvalResult, "Clean verification", "eval-clean result", _clean),
    _kind(HeadTrainingResult, "Identification head", "train-head result", _head),
)
