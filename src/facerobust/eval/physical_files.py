"""The files an accessory attack leaves in its run folder: the printable texture (PNG at a
stated DPI with transparency outside the region, and a PDF at real size) and a preview grid
of the attacker wearing it under held-out captures."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from facerobust.attacks.accessory import FACE_WIDTH_MM, MM_PER_PX, region

MM_PER_INCH = 25.4


def _rgba(texture: torch.Tensor, accessory: str, scale: int) -> np.ndarray:
    mask = region(accessory)[0, 0].numpy()
    rgb = texture[0].permute(1, 2, 0).clamp(0, 1).numpy()
    rgba = np.dstack([rgb, mask]) * 255
    big = np.repeat(np.repeat(rgba, scale, 0), scale, 1)
    return big.round().astype(np.uint8)


def write_printable(texture: torch.Tensor, accessory: str, png: Path, pdf: Path,
                    dpi: int) -> None:
    """``png`` at ``dpi`` (one chip pixel = :data:`MM_PER_PX` mm at a face
    :data:`FACE_WIDTH_MM` mm wide) and ``pdf`` of the same at real size."""
    scale = max(1, round(MM_PER_PX / MM_PER_INCH * dpi))
    rgba = _rgba(texture, accessory, scale)
    bgra = rgba[:, :, [2, 1, 0, 3]]
    if not cv2.imwrite(str(png), bgra):
        raise OSError(f"could not write {png}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inches = texture.shape[-1] * MM_PER_PX / MM_PER_INCH
    fig = plt.figure(figsize=(inches, inches))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(rgba, interpolation="nearest")
    ax.set_axis_off()
    fig.text(0.01, 0.01, f"{accessory}: print at 100% ({inches * MM_PER_INCH:.0f} mm wide "
             f"for a face {FACE_WIDTH_MM:.0f} mm wide)", fontsize=4)
    fig.savefig(pdf, format="pdf")
    plt.close(fig)


def write_preview(photos: list[torch.Tensor], path: Path, height: int = 200) -> None:
    """A row of photos (each (1, 3, H, W) in [0, 1]) scaled to ``height``, as a PNG."""
    tiles = []
    for p in photos:
        rgb = (p[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
        w = round(rgb.shape[1] * height / rgb.shape[0])
        tiles.append(cv2.resize(rgb, (w, height), interpolation=cv2.INTER_AREA))
    if not cv2.imwrite(str(path), np.hstack(tiles)[:, :, ::-1]):
        raise OSError(f"could not write {path}")


__all__ = ["write_preview", "write_printable"]
