"""Reports: the paper's Table 7 layout (Markdown, CSV, JSON) and the blur-sweep plot (Fig. 12)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cracksam.config import atomic_write_bytes, atomic_write_text
from cracksam.evaluation.runner import EvalModel, PassResult


@dataclass(frozen=True)
class Column:
    """A column of the table: a label, and which pass fills it."""

    label: str
    dataset: str
    condition: str


def _params(n: int) -> str:
    return f"{n / 1e6:.1f}" if n >= 1e6 else f"{n / 1e6:.2f}"


def build_table(
    models: Sequence[EvalModel],
    columns: Sequence[Column],
    results: Sequence[PassResult],
    metric: str = "iou",
    reduction: str = "dataset",
) -> tuple[list[str], list[list[str]], dict[str, Any]]:
    """Header, rows (strings) and a JSON document with every metric of every cell."""
    by_key = {(r.model, r.dataset, r.condition): r for r in results}
    header = ["model", "backbone", "total params (M)", "trainable params (M)"] + [c.label for c in columns]
    rows, doc_rows = [], []
    for m in models:
        row = [m.name, m.backbone, _params(m.total_params), _params(m.trainable_params)]
        cells = {}
        for c in columns:
            r = by_key.get((m.name, c.dataset, c.condition))
            levels = (r.dataset_level if reduction == "dataset" else r.image_level) if r else None
            row.append(f"{levels[metric]:.4f}" if levels else "–")
            cells[c.label] = r.to_dict() if r else None
        rows.append(row)
        doc_rows.append(
            {
                "model": m.name,
                "backbone": m.backbone,
                "source": m.source,
                "total_parameters": m.total_params,
                "trainable_parameters": m.trainable_params,
                "cells": cells,
            }
        )
    doc = {
        "metric": metric,
        "reduction": reduction,
        "columns": [c.__dict__ for c in columns],
        "rows": doc_rows,
    }
    return header, rows, doc


def _md_row(cells: Sequence[str]) -> str:
    # A "|" inside a cell (the "|error|" of a header) would start a new cell: escape it.
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def write_table(
    out_dir: Path, name: str, header: list[str], rows: list[list[str]], doc: dict[str, Any], caption: str = ""
) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md = []
    if caption:
        md += [caption, ""]
    md.append(_md_row(header))
    md.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|")
    md += [_md_row(r) for r in rows]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    paths = [out_dir / f"{name}.md", out_dir / f"{name}.csv", out_dir / f"{name}.json"]
    atomic_write_text(paths[0], "\n".join(md) + "\n")
    atomic_write_text(paths[1], buf.getvalue())
    atomic_write_text(paths[2], json.dumps(doc, indent=2) + "\n")
    return paths


def blur_sweep_plot(
    path: Path, kernels: Sequence[int], curves: Mapping[str, Sequence[float]], metric: str = "IoU", title: str = ""
) -> Path:
    """IoU (or another metric) against Gaussian-blur kernel size, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, values in curves.items():
        ax.plot(list(kernels), list(values), marker="o", label=name)
    ax.set_xlabel("Gaussian blur kernel size (px)")
    ax.set_ylabel(metric)
    ax.set_xticks(list(kernels))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.set_title(title or f"{metric} under increasing blur")
    ax.legend()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path
