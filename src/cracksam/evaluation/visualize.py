"""Visual outputs: image / truth / prediction overlays with a colour key, and crack-probability
heat-maps (paper Fig. 15)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from cracksam._files import encode_png
from cracksam.config import atomic_write_bytes

if TYPE_CHECKING:
    from cracksam.inference.predictor import Prediction

# RGB colours of the comparison overlay.
TP_COLOUR = (0, 200, 0)  # crack found
FP_COLOUR = (230, 30, 30)  # predicted crack, none in the truth
FN_COLOUR = (40, 90, 255)  # crack missed
TRUTH_COLOUR = (255, 200, 0)


def overlay(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], alpha: float = 0.6) -> np.ndarray:
    """Blend ``colour`` into ``image`` (H, W, 3 uint8 RGB) where ``mask`` is set."""
    out = image.copy()
    sel = mask.astype(bool)
    out[sel] = ((1 - alpha) * out[sel] + alpha * np.array(colour, np.float32)).astype(np.uint8)
    return out


KEY = (("truth", TRUTH_COLOUR), ("found", TP_COLOUR), ("false alarm", FP_COLOUR), ("missed", FN_COLOUR))


def colour_key(width: int, row_height: int = 20) -> np.ndarray:
    """A white strip naming the overlay colours, a swatch and a word each, wrapped onto as many rows
    as the width needs (what the colours of :func:`comparison_panel` mean, so a panel read on its
    own is not a guess)."""
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    items = [(label, colour, cv2.getTextSize(label, font, scale, 1)[0][0]) for label, colour in KEY]
    rows: list[list[tuple[str, tuple[int, int, int], int]]] = [[]]
    x = 6
    for item in items:
        need = 16 + item[2] + 12
        if rows[-1] and x + need > width:
            rows.append([])
            x = 6
        rows[-1].append(item)
        x += need
    strip = np.full((row_height * len(rows), width, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        x, top = 6, r * row_height
        for label, colour, tw in row:
            cv2.rectangle(strip, (x, top + 4), (x + 12, top + row_height - 5), colour, cv2.FILLED)
            cv2.putText(strip, label, (x + 16, top + row_height - 6), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
            x += 16 + tw + 12
    return strip


def comparison_panel(image: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Three panels side by side: image | truth (yellow) | prediction (found green, false alarm red,
    missed blue), above a colour key saying so."""
    truth, pred = truth.astype(bool), pred.astype(bool)
    right = overlay(image, truth & pred, TP_COLOUR, 0.8)
    right = overlay(right, pred & ~truth, FP_COLOUR, 0.8)
    right = overlay(right, truth & ~pred, FN_COLOUR, 0.8)
    gap = np.full((image.shape[0], 4, 3), 255, np.uint8)
    panels = np.concatenate([image, gap, overlay(image, truth, TRUTH_COLOUR, 0.8), gap, right], axis=1)
    return np.concatenate([panels, colour_key(panels.shape[1])], axis=0)


def heatmap_figure(image: np.ndarray, crack_prob: np.ndarray, title: str = ""):
    """The matplotlib figure of :func:`heatmap_png`: image | crack probability on a fixed 0-1 scale
    (a logit scale changes from image to image and says nothing a reader can compare)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = crack_prob.shape
    fig, axes = plt.subplots(1, 2, figsize=(8, 4 * h / max(w, 1) + 0.6), dpi=100)
    axes[0].imshow(image)
    axes[0].set_title("image")
    im = axes[1].imshow(np.clip(crack_prob, 0.0, 1.0), cmap="jet", vmin=0.0, vmax=1.0)
    axes[1].set_title("crack probability")
    for ax in axes:
        ax.axis("off")
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title)
    return fig


def heatmap_png(image: np.ndarray, crack_prob: np.ndarray, title: str = "") -> bytes:
    """The crack probability (0-1) as a heat-map beside the image, with a colour bar (matplotlib)."""
    import matplotlib.pyplot as plt

    fig = heatmap_figure(image, crack_prob, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def save_visuals(
    directory: Path, stem: str, image: np.ndarray, truth: np.ndarray, pred: Prediction, threshold: float
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    panel = comparison_panel(image, truth, pred.prob >= threshold)
    atomic_write_bytes(directory / f"{stem}_overlay.png", encode_png(panel))
    atomic_write_bytes(directory / f"{stem}_heatmap.png", heatmap_png(image, pred.prob, stem))
