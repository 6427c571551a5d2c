"""The audit kind (``audit``, ``attack``, ``defend``, ``detect``, ``demo``): its page (figures
embedded, CSV tables beside it) and its rates for ``--compare``, all read from the typed
:class:`~facerobust.eval.results_audit.Results`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facerobust.eval.results_audit import Results
from facerobust.eval.results_file import VERDICT_RULE, Overview
from facerobust.eval.results_load import audit_from_document, is_legacy_audit
from facerobust.eval.stats import Rate
from facerobust.report import figures
from facerobust.report.figures_certify import certified_curves
from facerobust.report.kind_base import Legacy, Loaded, ReportKind
from facerobust.report.page import (
    RATE_HEADER,
    data_uri,
    environment,
    file_uri,
    rate_cells,
    write_csv,
)
from facerobust.report.unit_sections import sections_by_place


def build_figures(results: Results, out_dir: Path) -> dict[str, Any]:
    """Draw every figure, save PNGs under ``out_dir/figures`` and return data URIs."""
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    uris: dict[str, Any] = {"attacks": {}, "defenses": {}, "examples": {}, "detectors": {},
                            "certify": {}}

    def keep(name: str, png: bytes | None) -> str | None:
        if png is None:
            return None
        (fig_dir / f"{name}.png").write_bytes(png)
        return data_uri(png)

    uris["accuracy"] = keep("accuracy_vs_epsilon",
                            figures.accuracy_vs_epsilon(results.accuracy_curves))
    for attack in results.attacks:
        uris["attacks"][attack.key] = keep(f"success_{attack.key}",
                                           figures.success_vs_epsilon(attack))
        example = file_uri(out_dir, attack.examples) if attack.examples else None
        if example is not None:
            uris["examples"][attack.key] = example
    clean = results.victim_clean
    if clean is not None and clean.roc:
        uris["roc"] = keep("roc", figures.roc_curves(clean, results.roc_attacked,
                                                     results.models.victim))
    uris["transfer"] = keep("transfer", figures.transfer_heatmap(results.transfer_matrix))
    uris["source_target"] = [keep(f"transfer_{m.slug}", figures.transfer_heatmap(m))
                             for m in results.source_target]
    if results.minimal is not None:
        uris["minimal"] = keep("minimal", figures.minimal_histogram(results.minimal))
    for defense in results.defenses:
        uris["defenses"][defense.name] = keep(f"defense_{defense.slug}",
                                              figures.defense_curves(defense))
    for unit in results.detectors:
        uris["detectors"][unit.key] = keep(f"roc_{unit.key}", figures.detector_rocs(unit))
    for cert in results.certify:
        uris["certify"][cert.key] = keep(cert.key, certified_curves(cert))
    return uris


DEFENSE_COLUMNS = ("undefended", "naive", "direct", "adaptive", "blackbox", "worst_case")


def write_tables(results: Results, out_dir: Path) -> list[Path]:
    """CSV tables: clean figures, attack success per epsilon (victim and transfer), defenses,
    detectors; every rate with its count and 95% interval."""
    table_dir = out_dir / "tables"
    written = [write_csv(table_dir / "clean.csv",
                         ["model", "accuracy", "accuracy_std", "auc", "eer", "far",
                          "threshold_at_far", "n_pairs", *[f"tar_at_far_{h}" for h in RATE_HEADER],
                          *[f"identification_top1_{h}" for h in RATE_HEADER]],
                         [[m, c.accuracy, c.accuracy_std, c.auc, c.eer, c.far,
                           c.threshold_at_far, c.n_pairs, *rate_cells(c.tar_at_far),
                           *rate_cells(c.identification_top1)]
                          for m, c in results.clean.items()])]
    rows = []
    for atk in results.attacks:
        for i, eps in enumerate(atk.epsilons):
            head = [atk.attack, atk.norm, atk.goal, eps, atk.epsilon_labels[i]]
            rows.append([*head, atk.victim, "white-box", *rate_cells(atk.success[i])])
            rows += [[*head, target, "transfer", *rate_cells(row.success[i])]
                     for target, row in atk.transfer.items()]
    written.append(write_csv(table_dir / "attacks.csv",
                             ["attack", "norm", "goal", "epsilon", "epsilon_label", "model",
                              "role", *RATE_HEADER], rows))
    if results.defenses:
        rows = [[d.name, d.goal, d.norm, eps, d.epsilon_labels[i], column,
                 *rate_cells(getattr(d, column)[i]), d.clean.rate, d.ms_per_image]
                for d in results.defenses for i, eps in enumerate(d.epsilons)
                for column in DEFENSE_COLUMNS if getattr(d, column)]
        written.append(write_csv(table_dir / "defenses.csv",
                                 ["defense", "goal", "norm", "epsilon", "epsilon_label",
                                  "attack", *RATE_HEADER, "clean", "ms_per_image"], rows))
    if results.detectors:
        rows = [[unit.key, res.label, row.group, row.auroc, *row.auroc_ci95, row.n_clean,
                 row.n_adversarial, *rate_cells(row.detected)]
                for unit in results.detectors for res in unit.results for row in res.per_attack]
        written.append(write_csv(table_dir / "detectors.csv",
                                 ["unit", "detector", "attack", "auroc", "auroc_low",
                                  "auroc_high", "n_clean", "n_adversarial",
                                  *[f"detected_{h}" for h in RATE_HEADER]], rows))
    if results.certify:
        rows = [[u.model, u.goal, u.sigma, u.n0, u.n, u.alpha, g.name, radius,
                 *rate_cells(rate), g.abstained.rate, g.attack_flips, g.attacked,
                 g.seconds_per_certificate]
                for u in results.certify for g in u.groups
                for radius, rate in zip(u.radii, g.certified, strict=True)]
        written.append(write_csv(table_dir / "certify.csv",
                                 ["model", "goal", "sigma", "n0", "n", "alpha", "group",
                                  "radius", *[f"certified_{h}" for h in RATE_HEADER],
                                  "abstain_rate", "attack_flips", "attacked",
                                  "seconds_per_certificate"], rows))
    return written


def render(loaded: Loaded, json_path: Path, html_path: Path) -> str:
    results: Results = loaded.result
    out_dir = json_path.parent
    uris = build_figures(results, out_dir)
    write_tables(results, out_dir)
    return environment().get_template("report.html.j2").render(
        r=results, fig=uris, overview=loaded.overview, verdict_rule=VERDICT_RULE,
        sections=sections_by_place())


def overview(results: Results) -> Overview:
    summary = results.summary
    return Overview([], []) if summary is None else Overview(summary.verdicts,
                                                             summary.sentences)


def rates(results: Results) -> dict[str, Rate]:
    """Every rate of the run by a label that names it in any run of the same design."""
    out: dict[str, Rate] = {}
    for name, c in results.clean.items():
        out[f"clean {name}: correct decisions"] = c.correct
        out[f"clean {name}: TAR at FAR {c.far:g}"] = c.tar_at_far
        if c.identification_top1 is not None:
            out[f"clean {name}: identification top-1"] = c.identification_top1
    for a in results.attacks:
        source = f" from {'+'.join(a.surrogates)}" if a.surrogates else ""
        for i, label in enumerate(a.epsilon_labels):
            out[f"{a.attack.upper()} {a.norm} {a.goal}{source} @ {label} on {a.victim}"] = \
                a.success[i]
            for target, row in a.transfer.items():
                out[f"{a.attack.upper()} {a.norm} {a.goal}{source} @ {label} on {target} "
                    "(transfer)"] = row.success[i]
    if results.minimal is not None:
        m = results.minimal
        out[f"minimal {m.attack.upper()} {m.norm} {m.goal}: found"] = m.found
    for d in results.defenses:
        for i, label in enumerate(d.epsilon_labels):
            for column in DEFENSE_COLUMNS:
                values = getattr(d, column)
                if values:
                    out[f"defense {d.name} {d.goal} @ {label}: {column}"] = values[i]
        out[f"defense {d.name}: clean"] = d.clean
    for f in results.fusions:
        for i, label in enumerate(f.epsilon_labels):
            out[f"fusion {'+'.join(f.models)} {f.goal} @ {label}: white-box"] = f.adaptive[i]
    for unit in results.detectors:
        for det in unit.results:
            out[f"detector {det.label}: clean false alarms"] = det.clean_fpr
            for step in det.adaptive:
                out[f"detector {det.label} {step.goal} @ {step.epsilon_label}: adaptive "
                    "evades"] = step.adaptive_evades
    for cert in results.certify:
        for g in cert.groups:
            for radius, rate in zip(cert.radii, g.certified, strict=True):
                out[f"certify {cert.model} sigma {cert.sigma:g} {g.name}: certified at L2 "
                    f"{radius:g}"] = rate
    return out


AUDIT = ReportKind(
    name=Results.KIND, title="Adversarial robustness audit", read=audit_from_document,
    render=render, overview=overview, rates=rates,
    legacy=Legacy(shape=is_legacy_audit, version=2, key="schema_version",
                  convert=audit_from_document, what="an audit's"))
