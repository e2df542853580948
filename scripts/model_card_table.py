"""Per-set test table of MODEL_CARD.md from an evaluation folder (`cracksam evaluate ... --out DIR`).

    python scripts/model_card_table.py runs/default-model/eval

Columns: clean strict P / R / F1 / IoU (dataset level, the headline), F1 with a 2-px tolerance,
ODS F1, clDice, then IoU (and F1@2px) under the dim and blurry corruptions; a pooled row; and the
zero-shot sets.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def main(folder: str) -> None:
    results = json.loads((Path(folder) / "results.json").read_text())
    test = [r for r in results if "per_dataset" in r]
    by_cond = {r["condition"]: r for r in test}
    clean = by_cond["clean"]
    print("| dataset | images | clean P / R / F1 / IoU | F1 @2px | ODS F1 | clDice | dim IoU (F1 @2px) "
          "| blurry IoU (F1 @2px) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")

    def row(name: str, n: int, lv: dict, dim: dict | None, blur: dict | None, bold: bool = False) -> str:
        iou = f"**{lv['iou']:.3f}**" if not bold else f"**{lv['iou']:.3f}**"
        strict = f"{lv['precision']:.3f} / {lv['recall']:.3f} / {lv['f1']:.3f} / {iou}"
        cond = [f"{_fmt(c['iou'])} ({_fmt(c.get('f1_tol2'))})" if c else "–" for c in (dim, blur)]
        label = f"**{name}**" if bold else name
        return (f"| {label} | {n} | {strict} | {_fmt(lv.get('f1_tol2'))} | {_fmt(lv.get('ods_f1'))} "
                f"| {_fmt(lv.get('cldice'))} | {cond[0]} | {cond[1]} |")

    for name, d in clean["per_dataset"].items():
        dim = by_cond.get("dim", {}).get("per_dataset", {}).get(name, {}).get("dataset_level")
        blur = by_cond.get("blurry", {}).get("per_dataset", {}).get(name, {}).get("dataset_level")
        print(row(name, d["n_images"], d["dataset_level"], dim, blur))
    dim = by_cond.get("dim", {}).get("dataset_level")
    blur = by_cond.get("blurry", {}).get("dataset_level")
    print(row("all six, pooled", clean["n_images"], clean["dataset_level"], dim, blur, bold=True))
    for r in results:
        if "per_dataset" not in r and r["condition"] == "clean":
            print(row(f"{r['dataset']} (never trained on)", r["n_images"], r["dataset_level"], None, None))


if __name__ == "__main__":
    main(sys.argv[1])
