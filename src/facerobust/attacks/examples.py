"""The examples figure of ``facerobust attack``: original | amplified perturbation | adversarial."""

from __future__ import annotations

from pathlib import Path

import torch


def save_examples(
    path: Path,
    x: torch.Tensor,
    adv: torch.Tensor,
    before: torch.Tensor,
    after: torch.Tensor,
    success: torch.Tensor,
    *,
    score_name: str,
    title: str,
    rows: int = 4,
) -> None:
    """Write a grid of up to ``rows`` probes (successful ones first) to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = torch.cat([success.nonzero()[:, 0], (~success).nonzero()[:, 0]])[:rows].tolist()
    fig, axes = plt.subplots(len(order), 3, figsize=(7.5, 2.6 * len(order)), squeeze=False)
    for r, i in enumerate(order):
        delta = (adv[i] - x[i]).detach().cpu()
        scale = float(delta.abs().max())
        amp = 0.5 + delta / (2 * scale) if scale > 0 else torch.full_like(delta, 0.5)
        panels = [
            (x[i], f"original\n{score_name} {float(before[i]):.3f}"),
            (amp, f"perturbation x{0.5 / scale if scale > 0 else 0:.0f}\n"
                  f"Linf {scale * 255:.1f}/255  L2 {float(delta.norm()):.2f}"),
            (adv[i], f"adversarial ({'success' if bool(success[i]) else 'failed'})\n"
                     f"{score_name} {float(after[i]):.3f}"),
        ]
        for c, (img, label) in enumerate(panels):
            ax = axes[r][c]
            ax.imshow(img.detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_title(label, fontsize=8)
            ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
