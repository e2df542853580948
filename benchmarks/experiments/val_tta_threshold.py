"""Decision threshold and flip test-time augmentation of a model, chosen on the VALIDATION splits.

    python benchmarks/experiments/val_tta_threshold.py MODEL_DIR [OUT.json]

Runs the model the way `predict` does (native resolution, PyTorch) on the validation split of the
six training sets (seed 0, 70/15/15 by source photo, as in training), once plain and once averaged
with its horizontal flip, and accumulates dataset-level crack counts at thresholds 0.30..0.70.
Prints per-set IoU, the mean of sets and pooled IoU for each (variant, threshold).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from cracksam.data.io import read_image
from cracksam.data.masks import read_mask
from cracksam.data.splits import load_split
from cracksam.inference.predictor import Predictor

SETS = ["cfd", "cracksc", "crack500_crops", "deepcrack_crops", "gaps384_crops", "shadowcrack_crops"]
THRESHOLDS = [round(t, 2) for t in np.arange(0.30, 0.701, 0.05)]


def main(model: str, out: str | None) -> None:
    predictor = Predictor.from_path(model, runtime="torch")
    counts = {v: {s: np.zeros((len(THRESHOLDS), 3)) for s in SETS} for v in ("plain", "flip")}
    t0 = time.time()
    for name in SETS:
        samples = load_split(f"../shared/datasets/{name}", "val")
        for sample in samples:
            image = read_image(sample.image)
            truth = read_mask(sample.mask) > 0
            prob = predictor.predict_one(image).prob
            flipped = predictor.predict_one(np.ascontiguousarray(image[:, ::-1])).prob[:, ::-1]
            for variant, p in (("plain", prob), ("flip", (prob + flipped) / 2)):
                for i, t in enumerate(THRESHOLDS):
                    pred = p >= t
                    tp = np.count_nonzero(pred & truth)
                    counts[variant][name][i] += (tp, np.count_nonzero(pred) - tp, np.count_nonzero(truth) - tp)
        print(f"{name}: {len(samples)} images, {time.time() - t0:.0f} s", file=sys.stderr)
    rows = []
    for variant in ("plain", "flip"):
        for i, t in enumerate(THRESHOLDS):
            ious = {s: float(c[i, 0] / max(1.0, c[i].sum())) for s, c in counts[variant].items()}
            pooled = sum(c[i] for c in counts[variant].values())
            rows.append({"variant": variant, "threshold": t, **ious, "mean_sets": float(np.mean(list(ious.values()))),
                         "pooled": float(pooled[0] / max(1.0, pooled.sum()))})
    print("| variant | threshold | " + " | ".join(SETS) + " | mean of sets | pooled |")
    print("|---|---:|" + "---:|" * (len(SETS) + 2))
    for r in rows:
        print(f"| {r['variant']} | {r['threshold']:.2f} | " + " | ".join(f"{r[s]:.3f}" for s in SETS)
              + f" | {r['mean_sets']:.3f} | {r['pooled']:.3f} |")
    if out:
        with open(out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
