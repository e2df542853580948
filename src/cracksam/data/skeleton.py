"""Skeleton targets for the skeleton-recall loss (Kirchhoff et al., ECCV 2024).

The loss rewards covering the crack's centre line, which a Dice term barely notices for a 1-2 px
crack (its few pixels weigh little against wide cracks). The skeleton is computed on the CPU in the
data loader, once per augmented crop, so the loss itself is a cheap weighted sum on the device.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.morphology import skeletonize

__all__ = ["skeleton_target"]


def skeleton_target(mask: np.ndarray, dilate: int = 1) -> np.ndarray:
    """Skeleton of a binary mask (H, W), dilated ``dilate`` times with a 3x3 cross ("tubed", as in
    the paper, so a prediction one pixel off the exact centre line still counts).

    Returns uint8 (H, W) in {0, 1}. An empty mask gives an empty skeleton.
    """
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    if dilate < 0:
        raise ValueError(f"dilate must be >= 0, got {dilate}")
    binary = np.asarray(mask) > 0
    if not binary.any():
        return np.zeros(binary.shape, np.uint8)
    skel = skeletonize(binary).astype(np.uint8)
    if dilate:
        kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
        skel = cv2.dilate(skel, kernel, iterations=dilate)
    return skel
