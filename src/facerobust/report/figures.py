"""Matplotlib figures drawn from a results.json dict (no computation beyond plotting)."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

Figure = bytes  # PNG bytes


def _png(fig: Any) -> Figure:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _eps_labels(values: list[float]) -> list[str]:
    return [f"{v * 255:.3g}/255" if v < 1 else f"{v:.3g}" for v in values]


def accuracy_vs_epsilon(curves: list[dict[str, Any]]) -> Figure | None:
    """One line per attack: decision accuracy under attack vs epsilon (eps 0 = clean)."""
    if not curves:
        return None
    tasks = sorted({c["task"] for c in curves})
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for curve in (c for c in curves if c["task"] == task):
            ax.plot([e * 255 for e in curve["epsilons"]], [a * 100 for a in curve["accuracy"]],
                    marker="o", label=curve["label"])
        ax.set_xlabel("epsilon (x/255)" if curves[0].get("norm", "linf") == "linf" else "epsilon")
        ax.set_ylabel("accuracy under attack (%)")
        ax.set_ylim(-2, 102)
        ax.set_title(f"{task}: accuracy vs epsilon")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


def success_vs_epsilon(attack: dict[str, Any]) -> Figure:
    """Attack success on the victim (solid) and on every transfer target (dashed)."""
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    xs = [e * 255 if attack["norm"] == "linf" else e for e in attack["epsilons"]]
    ax.plot(xs, [s * 100 for s in attack["success"]], marker="o",
            label=f"{attack['victim']} (white-box)")
    for target, row in attack.get("transfer", {}).items():
        ax.plot(xs, [s * 100 for s in row["success"]], marker="s", linestyle="--",
                label=f"{target} (transfer)")
    ax.set_xlabel("epsilon (x/255)" if attack["norm"] == "linf" else "epsilon (L2)")
    ax.set_ylabel("attack success (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(f"{attack['attack'].upper()} {attack['norm']} - {attack['goal']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def roc_curves(clean: dict[str, Any], attacked: list[dict[str, Any]], model: str) -> Figure:
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    roc = clean["roc"]
    ax.plot(roc["fpr"], roc["tpr"], label=f"clean (AUC {clean['auc']:.3f})", linewidth=2)
    for curve in attacked:
        ax.plot(curve["fpr"], curve["tpr"], linestyle="--",
                label=f"{curve['label']} (AUC {curve['auc']:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlim(0, 1)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(f"ROC of {model}: clean vs attacked")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


def transfer_heatmap(matrix: dict[str, Any]) -> Figure | None:
    if not matrix or not matrix.get("rows"):
        return None
    values = [[v * 100 if v is not None else float("nan") for v in row] for row in matrix["values"]]
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(matrix["targets"]),
                                    1.2 + 0.45 * len(matrix["rows"])))
    image = ax.imshow(values, cmap="Reds", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(matrix["targets"])), matrix["targets"], rotation=20, ha="right")
    ax.set_yticks(range(len(matrix["rows"])), matrix["rows"])
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            ax.text(j, i, "-" if v != v else f"{v:.0f}%", ha="center", va="center", fontsize=8,
                    color="white" if v == v and v > 60 else "black")
    fig.colorbar(image, ax=ax, label="success (%)")
    ax.set_title(f"Transfer: adversarial chips made on {matrix['source']}")
    return _png(fig)


def minimal_histogram(minimal: dict[str, Any]) -> Figure | None:
    found = [e for e in minimal.get("per_sample", []) if e is not None]
    if not found:
        return None
    scale = 255 if minimal["norm"] == "linf" else 1
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.hist([e * scale for e in found], bins=min(20, max(5, len(found) // 2)), color="#b33")
    ax.axvline(minimal["median"] * scale, color="black", linestyle="--",
               label=f"median {minimal['median'] * scale:.3g}")
    ax.set_xlabel("smallest successful epsilon" + (" (x/255)" if scale == 255 else " (L2)"))
    ax.set_ylabel("samples")
    ax.set_title(f"Minimal perturbation ({minimal['attack']} {minimal['norm']}, "
                 f"{minimal['goal']})")
    ax.legend()
    return _png(fig)


def defense_curves(defense: dict[str, Any]) -> Figure:
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    eps = defense["epsilons"]
    xs = [e * 255 for e in eps]
    ax.plot(xs, [s * 100 for s in defense["undefended"]], marker="o", color="grey",
            label="no defense")
    ax.plot(xs, [s * 100 for s in defense["naive"]], marker="o", label="naive attack")
    ax.plot(xs, [s * 100 for s in defense["adaptive"]], marker="s", label="adaptive attack")
    ax.set_xlabel("epsilon (x/255)")
    ax.set_ylabel("attack success (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(f"Defense {defense['name']}: naive vs adaptive")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)
