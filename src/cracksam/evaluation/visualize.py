"""Visual outputs: image / truth / prediction overlays and crack-logit heat-maps (paper Fig. 15)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from cracksam.config import atomic_write_bytes

if TYPE_CHECKING:
    from cracksam.deployment.predictor import Prediction

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


def comparison_panel(image: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Three panels side by side: image | truth | prediction (TP green, FP red, FN blue)."""
    truth, pred = truth.astype(bool), pred.astype(bool)
    right = overlay(image, truth & pred, TP_COLOUR, 0.8)
    right = overlay(right, pred & ~truth, FP_COLOUR, 0.8)
    right = overlay(right, truth & ~pred, FN_COLOUR, 0.8)
    gap = np.full((image.shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([image, gap, overlay(image, truth, TRUTH_COLOUR, 0.8), gap, right], axis=1)


def _png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError("PNG encoding failed")
    return buf.tobytes()


def heatmap_png(image: np.ndarray, crack_logit: np.ndarray, title: str = "") -> bytes:
    """The crack-channel logit as a heat-map beside the image, with a colour bar (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = crack_logit.shape
    fig, axes = plt.subplots(1, 2, figsize=(8, 4 * h / max(w, 1) + 0.6), dpi=100)
    axes[0].imshow(image)
    axes[0].set_title("image")
    im = axes[1].imshow(crack_logit, cmap="jet")
    axes[1].set_title("crack logit")
    for ax in axes:
        ax.axis("off")
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def save_visuals(
    directory: Path, stem: str, image: np.ndarray, truth: np.ndarray, pred: Prediction, threshold: float
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(directory / f"{stem}_overlay.png", _png(comparison_panel(image, truth, pred.prob >= threshold)))
    atomic_write_bytes(directory / f"{stem}_heatmap.png", heatmap_png(image, pred.crack_logit, stem))
