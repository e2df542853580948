"""A folder of results to a survey: per-image inspections, overlays, exports and the HTML report.

Input is what ``cracksam predict`` writes (``<stem>_mask.png`` and ``summary.json``, which names
each mask's photo), or any folder of masks (``*_mask.png``, else every image in it), with the
photos found by stem in ``images`` when given.  Output, in ``out``:

* ``report.html`` -- the offline report (:mod:`cracksam.inspection.report_html`);
* ``inspection.json`` -- every figure of the report: options, summary, per-image inspections;
* ``cracks.csv``, ``images.csv``; ``coco.json``; ``geojson/<name>.geojson`` (pixel coordinates)
  and ``photos.geojson`` (WGS 84 points of the photos with EXIF GPS, when there are any);
* ``overlays/<name>.png`` -- full-size pictures, cracks coloured by severity.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cracksam import __version__
from cracksam.config import atomic_write_text
from cracksam.errors import ConfigError, CrackSAMError
from cracksam.inspection.core import Inspection, inspect_mask, inspection_to_dict
from cracksam.inspection.exports import (
    CRACK_CSV_COLUMNS,
    IMAGE_CSV_COLUMNS,
    coco_document,
    csv_text,
    geojson_document,
    photos_geojson,
    read_exif_gps,
)
from cracksam.inspection.severity import effective_scheme, load_scheme, severity_basis, severity_headline
from cracksam.inspection.types import CRACK_TYPES, TypeRules

__all__ = ["SurveyItem", "SurveyOptions", "build_survey", "discover_items", "predicted_items"]

IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg", ".webp", ".pgm", ".ppm"}
_BYPRODUCTS = ("_overlay", "_prob", "_measure")  # predict/measure pictures that are not masks


@dataclass(frozen=True)
class SurveyItem:
    name: str  # unique within the survey; names the outputs
    mask: Path
    photo: Path | None = None


@dataclass(frozen=True)
class SurveyOptions:
    mm_per_px: float | None = None
    min_length_px: float = 10.0
    rules: TypeRules = field(default_factory=TypeRules)
    severity: str = "astm-d6433"
    thumb_px: int = 240


def _photo_by_stem(images: Path | None, stem: str) -> Path | None:
    if images is None:
        return None
    found = sorted(p for p in images.glob(f"{stem}.*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return found[0] if found else None


def discover_items(folder: Path, images: Path | None = None) -> tuple[list[SurveyItem], list[tuple[str, str]]]:
    """The masks of ``folder`` with their photos, and (name, problem) pairs for what is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder of results")
    if images is not None and not Path(images).is_dir():
        raise ConfigError(f"--images {images}: not a folder")
    items: list[SurveyItem] = []
    problems: list[tuple[str, str]] = []
    summary = folder / "summary.json"
    rows = None
    if summary.is_file():
        try:
            rows = json.loads(summary.read_text(encoding="utf-8")).get("results")
        except (ValueError, AttributeError, UnicodeDecodeError):
            rows = None  # not predict's summary: fall back to the files
    if isinstance(rows, list) and rows:
        for row in rows:
            if not isinstance(row, dict) or "mask" not in row:
                if isinstance(row, dict) and row.get("error"):
                    problems.append((str(row.get("file", "?")), str(row["error"])))
                continue
            mask = folder / Path(str(row["mask"])).name  # paths in summary.json are relative to predict's cwd
            name = mask.name.removesuffix("_mask.png")
            if not mask.is_file():
                problems.append((str(mask), "mask listed in summary.json not found"))
                continue
            photo: Path | None = Path(str(row.get("file", "")))
            if photo is None or not photo.is_file():
                photo = _photo_by_stem(images, Path(str(row.get("file", ""))).stem) or _photo_by_stem(images, name)
            items.append(SurveyItem(name, mask, photo))
        return items, problems
    masks = sorted(p for p in folder.glob("*_mask.png") if p.is_file())
    if not masks:
        masks = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                       and not p.stem.endswith(_BYPRODUCTS))
        if masks and not any(_is_mask(p) for p in masks):
            raise ConfigError(f"{folder}: {len(masks)} photo(s) and no masks; run `cracksam predict {folder} --out "
                              "RESULTS` first, then `cracksam report RESULTS`")
    if not masks:
        raise ConfigError(f"{folder}: no masks found (expected predict's <stem>_mask.png or mask images)")
    for mask in masks:
        name = mask.name.removesuffix("_mask.png") if mask.name.endswith("_mask.png") else mask.stem
        items.append(SurveyItem(name, mask, _photo_by_stem(images, name)))
    return items, problems


def predicted_items(rows: list[dict[str, Any]]) -> list[SurveyItem]:
    """The masks ``predict`` has just written, as survey items: each row's ``mask``
    (``<stem>_mask.png``, the item named by its stem) with its photo, ``file``."""
    return [SurveyItem(Path(r["mask"]).name.removesuffix("_mask.png"), Path(r["mask"]), Path(r["file"]))
            for r in rows]


def _is_mask(path: Path) -> bool:
    """Whether ``path`` reads as a two-level mask (a photo does not); unreadable files count as masks
    here so that the survey reports them by name."""
    from cracksam.measurement import MeasurementError, read_binary_mask

    try:
        read_binary_mask(path)
    except MeasurementError as exc:
        return "not a binary mask" not in str(exc)
    return True


def _r(v: float | None, digits: int = 4) -> float | None:
    return None if v is None else round(float(v), digits)


def _image_entry(item: SurveyItem, ins: Inspection, gps: dict[str, Any], mm: float | None) -> dict[str, Any]:
    doc = inspection_to_dict(ins, source=item.name)
    w, h = ins.measure.image_size
    t = ins.measure.totals
    density = {"px_per_mpx": round(t.total_length_px / (w * h / 1e6), 4)}
    if mm is not None:
        density["m_per_m2"] = round((t.total_length_px * mm / 1000.0) / (w * h * mm * mm / 1e6), 4)
    return {"name": item.name, "photo": str(item.photo) if item.photo else None, "mask": str(item.mask),
            "overlay": f"overlays/{item.name}.png", "geojson": f"geojson/{item.name}.geojson", "gps": gps,
            "density": density, "error": None, **doc}


def _summary(entries: list[dict[str, Any]], inspections: list[Inspection], failed: int, scheme, note,
             mm: float | None) -> dict[str, Any]:
    unit = "mm" if mm is not None else "px"
    f = mm if mm is not None else 1.0
    cracks = [c for e in entries for c in e["cracks"]]
    length_px = sum(i.measure.totals.total_length_px for i in inspections)
    area_px = sum(i.measure.totals.total_area_px for i in inspections)
    worst = Counter(e["inspection"]["worst_severity"] or "none" for e in entries)
    levels = scheme.labels + ["none"]
    by_type: dict[str, float] = {}
    for ins in inspections:
        for crack, cls in zip(ins.measure.cracks, ins.classes, strict=True):
            by_type[cls.type] = by_type.get(cls.type, 0.0) + crack.length_px
    n = len(entries)
    grades = [scheme.labels.index(label) for label in worst if label in scheme.labels]
    top = scheme.labels[max(grades)] if grades else None
    return {
        "images": n, "failed": failed, "cracks": len(cracks), "unit": unit,
        "total_length": round(length_px * f, 4), "total_area": round(area_px * f * f, 4),
        "total_length_px": round(length_px, 4), "total_area_px": int(area_px),
        "images_by_worst_severity": {k: worst.get(k, 0) for k in levels},
        "share_by_worst_severity": {k: (round(worst.get(k, 0) / n, 4) if n else 0.0) for k in levels},
        "types": {t: sum(1 for c in cracks if c["type"] == t) for t in CRACK_TYPES},
        "length_by_type": {t: round(by_type.get(t, 0.0) * f, 4) for t in CRACK_TYPES},
        "density_key": "m_per_m2" if mm is not None else "px_per_mpx",
        "density_label": "crack length per area (m/m²)" if mm is not None else "crack length per image (px/Mpx)",
        "severity_scheme": scheme.to_dict(), "severity_note": note,
        # The survey's worst grade; without a scale it is in pixel bands, and the headline says so.
        "worst_severity": top, "severity_basis": severity_basis(scheme, mm),
        "severity_headline": severity_headline(top, scheme, mm),
    }


def _image_row(e: dict[str, Any]) -> dict[str, Any]:
    t, gps = e.get("totals") or {}, e.get("gps") or {}
    size = e.get("image_size") or {}
    return {"image": e["name"], "photo": e.get("photo"), "width": size.get("width"), "height": size.get("height"),
            "mm_per_px": e.get("mm_per_px"), **{k: t.get(k) for k in IMAGE_CSV_COLUMNS if k in t},
            "crack_density_px_per_mpx": (e.get("density") or {}).get("px_per_mpx"),
            "worst_severity": (e.get("inspection") or {}).get("worst_severity"),
            "severity_scheme": ((e.get("inspection") or {}).get("severity_scheme") or {}).get("name"),
            **{k: gps.get(k) for k in ("latitude", "longitude", "altitude_m", "datetime")}, "error": e.get("error")}


def build_survey(items: list[SurveyItem], out: Path, options: SurveyOptions | None = None,
                 problems: list[tuple[str, str]] | None = None,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Inspect every item, write the outputs listed in the module docstring; returns the survey
    document (what ``inspection.json`` holds).  Items that fail are reported in it, not raised."""
    from cracksam.data.io import read_image
    from cracksam.inspection.overlay import render_inspection, thumbnail_data_uri
    from cracksam.inspection.report_html import render_report
    from cracksam.measurement import read_binary_mask, write_png

    options = options or SurveyOptions()
    requested = load_scheme(options.severity)  # a bad scheme fails before any work
    scheme, note = effective_scheme(requested, options.mm_per_px)
    if options.mm_per_px is not None and not (math.isfinite(options.mm_per_px) and options.mm_per_px > 0):
        raise ConfigError(f"--mm-per-px must be a positive number, got {options.mm_per_px}")
    out = Path(out)
    entries, inspections, thumbs, errors = [], [], {}, []
    coco_images, geo_rows = [], []
    for name, problem in problems or []:
        errors.append({"name": name, "error": problem})
    for item in items:
        try:
            mask = read_binary_mask(item.mask)
            photo = read_image(item.photo) if item.photo is not None else None
            if photo is not None and photo.shape[:2] != mask.shape:
                raise CrackSAMError(f"{item.photo}: photo is {photo.shape[1]}x{photo.shape[0]} px but mask "
                                    f"{item.mask} is {mask.shape[1]}x{mask.shape[0]} px")
            ins = inspect_mask(mask, mm_per_px=options.mm_per_px, min_length_px=options.min_length_px,
                               rules=options.rules, severity=requested)
            gps = read_exif_gps(item.photo) if item.photo is not None else {}
            picture = render_inspection(photo if photo is not None else mask, ins)
            write_png(out / "overlays" / f"{item.name}.png", picture)
            entry = _image_entry(item, ins, gps, options.mm_per_px)
            atomic_write_text(out / entry["geojson"], json.dumps(geojson_document(ins, item.name, gps)) + "\n")
        except (CrackSAMError, ValueError) as exc:
            errors.append({"name": item.name, "error": str(exc)})
        else:
            thumbs[item.name] = thumbnail_data_uri(picture, options.thumb_px)
            entries.append(entry)
            inspections.append(ins)
            coco_images.append({"file_name": (item.photo or item.mask).name, "cracksam_name": item.name, **gps})
            geo_rows.append(_image_row(entry) | {"n_cracks": entry["totals"]["n_cracks"]})
        if progress is not None:
            progress(item.name)
    doc = {
        "cracksam_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "options": {"mm_per_px": options.mm_per_px, "min_length_px": options.min_length_px,
                    "severity": requested.name, "type_rules": asdict(options.rules)},
        "summary": _summary(entries, inspections, len(errors), scheme, note, options.mm_per_px),
        "images": entries,
        "errors": errors,
    }
    crack_rows = []
    for e in entries:
        for c in e["cracks"]:
            b, wp = c["bbox"], c["widest_point"]
            crack_rows.append({**c, "image": e["name"], "bbox_x": b["x"], "bbox_y": b["y"], "bbox_w": b["w"],
                               "bbox_h": b["h"], "widest_x": wp["x"], "widest_y": wp["y"],
                               "severity_unit": scheme.unit})
    atomic_write_text(out / "inspection.json", json.dumps(doc, indent=1) + "\n")
    atomic_write_text(out / "cracks.csv", csv_text(CRACK_CSV_COLUMNS, crack_rows))
    image_rows = [_image_row(e) for e in entries] + [{"image": e["name"], "error": e["error"]} for e in errors]
    atomic_write_text(out / "images.csv", csv_text(IMAGE_CSV_COLUMNS, image_rows))
    info = {"description": "cracksam predictions", "version": __version__, "date_created": doc["created"]}
    atomic_write_text(out / "coco.json", json.dumps(coco_document(coco_images, inspections, info)) + "\n")
    located = photos_geojson(geo_rows)
    if located["features"]:
        atomic_write_text(out / "photos.geojson", json.dumps(located, indent=1) + "\n")
    atomic_write_text(out / "report.html", render_report(doc, thumbs))
    return doc
