"""The certified-accuracy figure of a ``[[certify]]`` unit: per group of probes, the fraction
certified correct against the L2 radius (Cohen et al.'s curve), with the 95% intervals of the
table's radii as error bars."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

from facerobust.report.figures import Figure, png, rate_bars  # figures sets the Agg backend

if TYPE_CHECKING:
    from facerobust.eval.results_certify import CertifyUnit

COLOURS = {"genuine": "#1b6", "impostor": "#b33", "identification": "#36b"}


def certified_curves(unit: CertifyUnit) -> Figure | None:
    """Certified accuracy vs L2 radius, one line per group (None without probes)."""
    groups = [g for g in unit.groups if g.n]
    if not groups:
        return None
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for g in groups:
        colour = COLOURS.get(g.name)
        ax.plot(g.curve_radii, [100 * c for c in g.curve], color=colour,
                label=f"{g.name} ({g.decision}, n={g.n})")
        rate_bars(ax, unit.radii, g.certified, fmt="o", color=colour)
    ax.set_xlabel("L2 radius (chip in [0, 1])")
    ax.set_ylabel("certified correct (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(f"Smoothed {unit.model}, sigma {unit.sigma:g} "
                 f"(n={unit.n}, alpha={unit.alpha:g})", fontsize=9)
    ax.legend(fontsize=8)
    return png(fig)
