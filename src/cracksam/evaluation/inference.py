"""Run a segmentation model on images of any size and get maps at the ORIGINAL size.

The image is resized to the model's input exactly as in training (same transform), the logits
are computed there and resized back bilinearly to the original size, so scores are computed on
the original pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from cracksam.data.transforms import build_transform


@dataclass
class Prediction:
    """Per image, at original size (H, W): crack probability and the crack-channel logit."""

    prob: np.ndarray  # float32 (H, W), softmax probability of the crack class
    crack_logit: np.ndarray  # float32 (H, W), raw logit of the crack channel (paper Fig. 15)


def model_image_size(model: nn.Module) -> int:
    config = getattr(model, "config", None)
    size = getattr(config, "image_size", None)
    if size is None:
        raise ValueError("the model does not say its input size; pass image_size")
    return int(size)


@torch.inference_mode()
def predict_images(
    model: nn.Module,
    images: Sequence[np.ndarray],
    image_size: int | None = None,
    device: str | torch.device = "cpu",
) -> list[Prediction]:
    """images: RGB uint8 (H_i, W_i, 3), any sizes -> one :class:`Prediction` per image."""
    if not images:
        return []
    size = image_size or model_image_size(model)
    transform = build_transform(size, augment=False)
    batch = np.stack([transform(image=img)["image"] for img in images])
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().to(device)
    logits = model(x).float()
    if logits.shape[1] != 2:
        raise ValueError(f"expected 2-channel (background, crack) logits, got {logits.shape[1]} channels")
    logits = logits.cpu().numpy()
    out = []
    for img, lg in zip(images, logits, strict=True):
        h, w = img.shape[:2]
        # Resize logits (not probabilities or masks): bilinear on logits is what the model's own
        # upsampling does, so the original-size map is consistent with the input-size one.
        l0 = cv2.resize(lg[0], (w, h), interpolation=cv2.INTER_LINEAR)
        l1 = cv2.resize(lg[1], (w, h), interpolation=cv2.INTER_LINEAR)
        prob = 1.0 / (1.0 + np.exp(np.clip(l0 - l1, -80, 80)))  # softmax of two channels
        out.append(Prediction(prob.astype(np.float32), l1.astype(np.float32)))
    return out
