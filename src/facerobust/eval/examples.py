"""Example grids: original | amplified perturbation | adversarial, with the model's scores."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from facerobust.attacks.threat import L2, LINF  # noqa: E402


def _hwc(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy()


def save_example_grid(original: torch.Tensor, adversarial: torch.Tensor, captions: list[str],
                      path: Path, *, title: str = "") -> Path:
    """Save a grid with one row per sample; the perturbation is shown amplified to full range.

    ``captions[i]`` is written under the adversarial image of row ``i`` (e.g. distances).
    """
    if original.shape != adversarial.shape:
        raise ValueError(f"original {tuple(original.shape)} and adversarial "
                         f"{tuple(adversarial.shape)} differ in shape")
    rows = original.shape[0]
    if rows == 0 or len(captions) != rows:
        raise ValueError(f"need >= 1 row and one caption per row, got {rows} rows and "
                         f"{len(captions)} captions")
    fig, axes = plt.subplots(rows, 3, figsize=(6.6, 2.35 * rows), squeeze=False)
    for i in range(rows):
        delta = (adversarial[i] - original[i]).detach().cpu()
        scale = delta.abs().max().item() or 1.0
        panels = [_hwc(original[i]), _hwc(delta / (2 * scale) + 0.5), _hwc(adversarial[i])]
        names = ["original", f"perturbation x{0.5 / scale:.0f}", "adversarial"]
        for j, (ax, img) in enumerate(zip(axes[i], panels, strict=True)):
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(names[j] if j != 1 else "perturbation (amplified)", fontsize=9)
        axes[i][2].set_xlabel(captions[i], fontsize=8)
        axes[i][1].set_xlabel(f"actual Linf {LINF.format_epsilon(scale)}, "
                              f"L2 {L2.format_epsilon(float(delta.norm()))}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
