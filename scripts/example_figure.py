"""The README / model card figure: the example photos, their ground truth, and two models' masks.

    python scripts/example_figure.py OLD_MODEL NEW_MODEL docs/figures/examples_old_new.jpg

One row per photo in examples/images (CrackSC test photos; truth from ../shared/datasets/cracksc):
truth (yellow) | old model | new model, each model coloured found (green) / false alarm (red) /
missed (blue), as `cracksam evaluate --visualize` draws them; the strict IoU of each photo is
written on its panel.  Models run as `predict` runs them (native resolution, threshold 0.5).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from cracksam.data.io import read_image
from cracksam.data.masks import read_mask
from cracksam.evaluation.visualize import FN_COLOUR, FP_COLOUR, TP_COLOUR, TRUTH_COLOUR, colour_key, overlay
from cracksam.inference.predictor import Predictor


def _panel(image: np.ndarray, truth: np.ndarray, pred: np.ndarray | None, label: str) -> np.ndarray:
    if pred is None:
        out = overlay(image, truth, TRUTH_COLOUR, 0.8)
    else:
        out = overlay(image, truth & pred, TP_COLOUR, 0.8)
        out = overlay(out, pred & ~truth, FP_COLOUR, 0.8)
        out = overlay(out, truth & ~pred, FN_COLOUR, 0.8)
        label += f"  IoU {np.count_nonzero(truth & pred) / max(1, np.count_nonzero(truth | pred)):.2f}"
    cv2.rectangle(out, (0, 0), (out.shape[1], 22), (255, 255, 255), cv2.FILLED)
    cv2.putText(out, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def main(old: str, new: str, out: str) -> None:
    models = [("previous model", Predictor.from_path(old, runtime="torch")),
              ("new model", Predictor.from_path(new, runtime="torch"))]
    rows = []
    for path in sorted(Path("examples/images").glob("cracksc_*.jpg")):
        image = read_image(path)
        truth = read_mask(Path("../shared/datasets/cracksc/masks") / f"{path.stem.split('_')[1]}.png") > 0
        panels = [_panel(image, truth, None, f"{path.stem}: truth")]
        panels += [_panel(image, truth, p.predict_one(image).mask(), name) for name, p in models]
        gap = np.full((image.shape[0], 4, 3), 255, np.uint8)
        rows.append(np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    figure = np.concatenate(rows + [colour_key(rows[0].shape[1])], axis=0)
    cv2.imwrite(out, cv2.cvtColor(figure, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(out, figure.shape)


if __name__ == "__main__":
    main(*sys.argv[1:4])
