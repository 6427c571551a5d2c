"""Figures of the face-similarity study reports, drawn from the JSON dicts of the typed
results (:mod:`facerobust.eval.results_study`); every rate with its 95% Wilson interval."""

from __future__ import annotations

from typing import Any

import matplotlib

from facerobust.report.figures import Figure, png, rate_bars

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _err(rates: list[dict[str, Any]]) -> tuple[list[float], list[list[float]]]:
    mid = [100 * r["rate"] for r in rates]
    return mid, [[100 * (r["rate"] - r["ci95"][0]) for r in rates],
                 [100 * (r["ci95"][1] - r["rate"]) for r in rates]]


def _paired_bars(labels: list[str], groups: dict[str, list[dict[str, Any]]], title: str,
                 xlabel: str) -> Figure:
    """Horizontal bars, one colour per group, with 95% CI error bars and k/n at each bar."""
    fig, ax = plt.subplots(figsize=(7.5, 0.3 * len(labels) * len(groups) + 1.4))
    height = 0.8 / max(1, len(groups))
    for g, (name, rates) in enumerate(groups.items()):
        ys = [i + g * height for i in range(len(labels))]
        mid, err = _err(rates)
        ax.barh(ys, mid, height=height, xerr=err, capsize=3, label=name, color=f"C{g}")
        for y, r in zip(ys, rates, strict=True):
            ax.text(101, y, f"{r['k']}/{r['n']}", va="center", fontsize=7)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(labels))], labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 110)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return png(fig)


def hardening_bars(judged: dict[str, Any]) -> Figure:
    """Before / after retraining on every judged condition (a)-(d)."""
    keys = list(judged["conditions"])
    rows = judged["conditions"]
    return _paired_bars(keys, {"before (original)": [rows[k]["before"] for k in keys],
                               "after (retrained)": [rows[k]["after"] for k in keys]},
                        "Retraining judged on held-out identities (95% CI)",
                        "rate (%): accuracy for (a)/(d)-clean, attack success otherwise")


DEFENSIVE_ROWS = ("probe_top1", "zero_gradient", "naive_pgd", "logit_pgd", "cw_l2_logits",
                  "cw_l2_unbounded")


def defensive_bars(result: dict[str, Any]) -> Figure:
    """Each head's probe accuracy and attack successes side by side."""
    keys = [k for k in DEFENSIVE_ROWS
            if all(h.get(k) is not None for h in result["heads"].values())]
    return _paired_bars(keys, {name: [h[k] for k in keys]
                               for name, h in result["heads"].items()},
                        f"Defensive distillation, T={result['temperature']:g} (95% CI)",
                        "rate (%)")


def transfer_lines(card: dict[str, Any]) -> Figure | None:
    """PGD dodging crafted on the teacher: white-box success and transfer to the student."""
    rows = card["transfer_teacher_to_student"]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    xs = [255 * r["eps"] for r in rows]
    rate_bars(ax, xs, [r["teacher"] for r in rows], marker="o",
               label=f"{card['teacher']} (white-box)")
    rate_bars(ax, xs, [r["student"] for r in rows], marker="s", linestyle="--",
               label=f"{card['name']} (transfer)")
    ax.set(xlabel="epsilon (x/255, Linf)", ylabel="dodging success (%), 95% CI",
           ylim=(-2, 102), title="Transfer: teacher -> student")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return png(fig)


def loss_curves(card: dict[str, Any]) -> Figure:
    training = card["training"]
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.plot(training["train_loss"], label="training")
    ax.plot(training["val_loss"], label="validation")
    ax.axvline(training["best_epoch"], color="grey", ls=":", label="kept epoch")
    ax.set(xlabel="epoch", ylabel="distillation loss", yscale="log",
           title=f"Distillation loss ({training['n_train']} train / {training['n_val']} val)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return png(fig)
