"""The report's plots (matplotlib, Agg), as base64 PNG ``data:`` URIs for an offline page."""

from __future__ import annotations

import base64
import io
from typing import Any

__all__ = ["survey_plots"]


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def survey_plots(doc: dict[str, Any]) -> dict[str, str]:
    """``width_histogram``, ``length_by_type`` and ``density`` plots of a survey document."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    unit = doc["summary"]["unit"]
    images = [im for im in doc["images"] if not im.get("error")]
    key = "mean_width_mm" if unit == "mm" else "mean_width_px"
    widths = [c[key] for im in images for c in im["cracks"]]
    out = {}

    fig = Figure(figsize=(3.6, 2.6))
    ax = fig.subplots()
    if widths:
        ax.hist(widths, bins=min(30, max(5, len(widths))), color="#c0392b")
    ax.set_xlabel(f"mean crack width ({unit})")
    ax.set_ylabel("cracks")
    ax.set_title("Width histogram")
    out["width_histogram"] = _png(fig)

    fig = Figure(figsize=(3.6, 2.6))
    ax = fig.subplots()
    by_type = doc["summary"]["length_by_type"]
    ax.barh(list(by_type), list(by_type.values()), color="#2c7fb8")
    ax.invert_yaxis()
    ax.set_xlabel(f"total length ({unit})")
    ax.set_title("Length by type")
    out["length_by_type"] = _png(fig)

    fig = Figure(figsize=(3.6, 2.6))
    ax = fig.subplots()
    dens_key, dens_label = doc["summary"]["density_key"], doc["summary"]["density_label"]
    names = [im["name"] for im in images]
    ax.bar(range(len(names)), [im["density"][dens_key] for im in images], color="#41ab5d")
    if len(names) <= 30:
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    else:
        ax.set_xlabel("image (in order)")
    ax.set_ylabel(dens_label)
    ax.set_title("Crack density per image")
    out["density"] = _png(fig)
    return out
