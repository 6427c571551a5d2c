"""Matplotlib figures drawn from the typed results (no computation beyond plotting). Rates
are drawn with their 95% Wilson intervals as error bars or bands."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib

from facerobust.attacks.threat import threat_for

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from facerobust.eval.stats import Rate  # noqa: E402

if TYPE_CHECKING:
    from facerobust.eval.results import AttackUnit, CleanUnit, DefenseUnit, MinimalUnit
    from facerobust.eval.results_audit import AccuracyCurve, AttackedRoc, RateMatrix
    from facerobust.eval.results_detection import DetectorUnit

Figure = bytes  # PNG bytes


def png(fig: Any) -> Figure:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def rate_bars(ax: Any, xs: list[float], rates: Sequence[Any], **style: Any) -> None:
    """Success in % with asymmetric 95% CI error bars (rates or their JSON objects)."""
    rates = [r if isinstance(r, Rate) else Rate.from_dict(r) for r in rates]
    mid = [100 * r.rate for r in rates]
    low = [100 * (r.rate - r.ci95[0]) for r in rates]
    high = [100 * (r.ci95[1] - r.rate) for r in rates]
    ax.errorbar(xs, mid, yerr=[low, high], capsize=3, **style)


def accuracy_vs_epsilon(curves: list[AccuracyCurve]) -> Figure | None:
    """One line per attack: decision accuracy under attack vs epsilon (eps 0 = clean), with
    the band from the attack success rates' 95% intervals."""
    if not curves:
        return None
    panels = sorted({(c.task, c.norm) for c in curves})
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, (task, norm) in zip(axes[0], panels, strict=True):
        scale, label = threat_for(norm).axis()
        for curve in (c for c in curves if (c.task, c.norm) == (task, norm)):
            xs = [e * scale for e in curve.epsilons]
            line = ax.plot(xs, [a * 100 for a in curve.accuracy], marker="o",
                           label=curve.label)[0]
            ax.fill_between(xs, [a * 100 for a in curve.low],
                            [a * 100 for a in curve.high], color=line.get_color(), alpha=0.15)
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy under attack (%)")
        ax.set_ylim(-2, 102)
        ax.set_title(f"{task}: accuracy vs epsilon (band: 95% CI)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return png(fig)


def success_vs_epsilon(attack: AttackUnit) -> Figure:
    """Attack success on the victim (solid) and on every transfer target (dashed)."""
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    scale, label = threat_for(attack.norm).axis()
    xs = [e * scale for e in attack.epsilons]
    rate_bars(ax, xs, attack.success, marker="o",
               label=f"{attack.victim} (white-box, n={attack.n})")
    for target, row in attack.transfer.items():
        rate_bars(ax, xs, row.success, marker="s", linestyle="--",
                   label=f"{target} (transfer)")
    ax.set_xlabel(label)
    ax.set_ylabel("attack success (%), 95% CI")
    ax.set_ylim(-2, 102)
    ax.set_title(f"{attack.attack.upper()} {attack.norm} - {attack.goal}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return png(fig)


def roc_curves(clean: CleanUnit, attacked: list[AttackedRoc], model: str) -> Figure:
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    roc = clean.roc
    ax.plot(roc["fpr"], roc["tpr"], label=f"clean (AUC {clean.auc:.3f})", linewidth=2)
    for curve in attacked:
        ax.plot(curve.fpr, curve.tpr, linestyle="--",
                label=f"{curve.label} (AUC {curve.auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlim(0, 1)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(f"ROC of {model}: clean vs attacked")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return png(fig)


def transfer_heatmap(matrix: RateMatrix | None) -> Figure | None:
    if matrix is None or not matrix.rows:
        return None
    values = [[v.rate * 100 if v is not None else float("nan") for v in row]
              for row in matrix.values]
    fig, ax = plt.subplots(figsize=(1.6 + 1.7 * len(matrix.targets),
                                    1.2 + 0.5 * len(matrix.rows)))
    image = ax.imshow(values, cmap="Reds", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(matrix.targets)), matrix.targets, rotation=20, ha="right")
    ax.set_yticks(range(len(matrix.rows)), matrix.rows)
    for i, row in enumerate(matrix.values):
        for j, cell in enumerate(row):
            text = "-" if cell is None else f"{100 * cell.rate:.0f}%\n({cell.k}/{cell.n})"
            dark = cell is not None and cell.rate > 0.6
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if dark else "black")
    fig.colorbar(image, ax=ax, label="success (%)")
    ax.set_title(matrix.title or
                 f"Transfer: chips made on {matrix.source} (or the source a row names); "
                 "n excludes each target's clean failures", fontsize=9)
    return png(fig)


def minimal_histogram(minimal: MinimalUnit) -> Figure | None:
    found = [e for e in minimal.per_sample if e is not None]
    if not found:
        return None
    scale, label = threat_for(minimal.norm).axis()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.hist([e * scale for e in found], bins=min(20, max(5, len(found) // 2)), color="#b33")
    if minimal.median is not None:
        ax.axvline(minimal.median * scale, color="black", linestyle="--",
                   label=f"median {minimal.median * scale:.3g}")
        ax.legend()
    ax.set_xlabel("smallest successful " + label)
    ax.set_ylabel("samples")
    ax.set_title(f"Minimal perturbation ({minimal.attack} {minimal.norm}, "
                 f"{minimal.goal}, n={minimal.n})")
    return png(fig)


DEFENSE_COLUMNS = (("undefended", "no defense", "grey"), ("naive", "naive attack", None),
                   ("direct", "direct (autograd)", None), ("adaptive", "adaptive (BPDA/EOT)", None),
                   ("blackbox", "black-box", None), ("worst_case", "worst case", "black"))


def defense_curves(defense: DefenseUnit) -> Figure:
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    scale, label = threat_for(defense.norm).axis()
    xs = [e * scale for e in defense.epsilons]
    for key, text, color in DEFENSE_COLUMNS:
        if getattr(defense, key):
            style: dict[str, Any] = {"marker": "o", "label": text}
            if color:
                style["color"] = color
            rate_bars(ax, xs, getattr(defense, key), **style)
    ax.set_xlabel(label)
    ax.set_ylabel("attack success (%), 95% CI")
    ax.set_ylim(-2, 102)
    ax.set_title(f"Defense {defense.name} ({defense.goal}, n={defense.n_attacked})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return png(fig)


def detector_rocs(unit: DetectorUnit) -> Figure | None:
    """One panel per detector variant: its ROC curve for every attack group (test split)."""
    results = [r for r in unit.results if r.per_attack]
    if not results:
        return None
    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.8), squeeze=False)
    for ax, res in zip(axes[0], results, strict=True):
        for row in res.per_attack:
            points = row.roc
            ax.plot([p[0] for p in points], [p[1] for p in points],
                    label=f"{row.group} ({row.auroc:.2f}, n={row.n_adversarial})")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
        ax.set_xlabel("false-positive rate (clean)")
        ax.set_ylabel("true-positive rate (adversarial)")
        macro = res.macro_auc
        ax.set_title(f"{res.label}: Macro-AUC {macro:.3f}" if macro is not None
                     else res.label, fontsize=9)
        ax.legend(fontsize=6, loc="lower right")
        ax.grid(alpha=0.3)
    return png(fig)
