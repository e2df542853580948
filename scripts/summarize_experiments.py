"""Table of the thin-crack experiments (docs/model-experiments.md) from their run folders.

    python scripts/summarize_experiments.py runs/exp/*   > table.md

One row per run: config, architecture, steps, wall time, and the validation IoU of the model the
run kept (per validation set, their mean, and pooled over every validation pixel), read from the
run's CSV log (the validation row with the best monitored score).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import yaml

SETS = ["cfd", "cracksc", "crack500_crops", "deepcrack_crops", "gaps384_crops", "shadowcrack_crops"]
SHORT = {"crack500_crops": "crack500", "deepcrack_crops": "deepcrack", "gaps384_crops": "gaps384",
         "shadowcrack_crops": "shadowcrack"}


def _rows(run: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for part in sorted((run / "logs").glob("part*/metrics.csv")):
        with part.open() as f:
            rows += [r for r in csv.DictReader(f) if r.get("val/iou")]
    return rows


def summarize(run: Path) -> str | None:
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    rows = _rows(run)
    if not rows:
        return None
    monitor = f"val/{cfg.get('monitor', 'iou')}"
    best = max(rows, key=lambda r: float(r.get(monitor) or r["val/iou"]))
    done = json.loads((run / "done.json").read_text()) if (run / "done.json").is_file() else {}
    wall = f"{done['wall_s'] / 60:.0f} min" if "wall_s" in done else "running"
    arch = (cfg.get("network") or {}).get("arch", "cracksam")
    data, loss = cfg["data"], cfg["loss"]
    pipeline = data.get("pipeline") or "native"
    recipe = f"{pipeline}, crop {data.get('crop')}, {data.get('weighting', 'size')}"
    if data.get("degrade"):
        recipe += f", degrade {data['degrade']:g}"
    delta = cfg.get("encoder_delta") or {}
    if delta.get("kind") not in (None, "none"):
        recipe += f", encoder frozen + {delta['kind']} r{delta.get('rank')}"
    if not (cfg.get("network") or {}).get("pretrained", True):
        recipe += ", random init"
    if loss.get("skeleton_recall"):
        recipe += f", SR {loss['skeleton_recall']:g}"
    sets = " | ".join(f"{float(best.get(f'val/iou_{s}') or 'nan'):.3f}" for s in SETS)
    return (f"| {run.name} | {arch} | {recipe} | {int(float(best['step'])) + 1}/{cfg.get('max_iters')} "
            f"| {wall} | {sets} | {float(best.get('val/iou_mean_sets') or 'nan'):.3f} | {float(best['val/iou']):.3f} |")


def main(paths: list[str]) -> None:
    heads = " | ".join(SHORT.get(s, s) for s in SETS)
    print(f"| run | architecture | recipe | step kept / steps | wall (2 CPU cores) | {heads} | mean of sets | pooled |")
    print("|" + "---|" * (7 + len(SETS)))
    for p in paths:
        run = Path(p)
        if (run / "config.yaml").is_file():
            line = summarize(run)
            if line:
                print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
