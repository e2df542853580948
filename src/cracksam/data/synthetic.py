"""Synthetic crack images for tests, demos and smoke runs (never for reported results).

Cracks are dark random polylines, 1-4 px wide, on a noisy, shaded asphalt-like background; the
mask is exactly the drawn polyline.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def synthetic_pair(
    size: tuple[int, int] = (96, 96), seed: int = 0, max_width: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """One (image H×W×3 uint8 RGB, mask H×W uint8 {0,1}) pair."""
    rng = np.random.default_rng(seed)
    h, w = size
    base = rng.integers(110, 170)
    image: np.ndarray = rng.normal(base, 18, (h, w, 1)).clip(0, 255).astype(np.uint8).repeat(3, axis=2)
    image = cv2.GaussianBlur(image, (3, 3), 0)
    shade = np.linspace(rng.uniform(-25, 0), rng.uniform(0, 25), w, dtype=np.float32)[None, :, None]
    image = np.clip(image.astype(np.float32) + shade, 0, 255).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    for _ in range(rng.integers(1, 3)):
        points = [(int(rng.integers(0, w)), int(rng.integers(0, h)))]
        for _ in range(rng.integers(3, 7)):
            x, y = points[-1]
            points.append(
                (
                    int(np.clip(x + rng.integers(-w // 3, w // 3), 0, w - 1)),
                    int(np.clip(y + rng.integers(-h // 3, h // 3), 0, h - 1)),
                )
            )
        cv2.polylines(mask, [np.array(points, np.int32)], False, 1, int(rng.integers(1, max_width + 1)))
    darkness = rng.uniform(60, 100)
    image[mask > 0] = np.clip(image[mask > 0].astype(np.float32) - darkness, 0, 255).astype(np.uint8)
    return image, mask


def make_dataset(root: str | Path, n: int = 16, size: tuple[int, int] = (96, 96), seed: int = 0) -> Path:
    """Write ``n`` synthetic pairs as ``root/images/*.png`` and ``root/masks/*.png`` (0/255)."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, mask = synthetic_pair(size, seed * 100_003 + i)
        cv2.imwrite(str(root / "images" / f"s{i:04d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "masks" / f"s{i:04d}.png"), mask * 255)
    return root
