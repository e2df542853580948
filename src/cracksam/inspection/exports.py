"""Exports for the tools people already use: COCO instances, GeoJSON, CSV; EXIF GPS of photos.

* **COCO** (:func:`coco_document`): one annotation per crack, category ``crack``, its mask as
  compressed RLE (``pycocotools.mask.encode``), ``iscrowd`` 0, and the crack's type, severity,
  length and width under ``attributes`` (CVAT and Label Studio keep those on import).
* **GeoJSON** (:func:`geojson_document`): per image, a ``MultiLineString`` (skeleton branches) and a
  ``MultiPolygon`` (outline) per crack, in *pixel* coordinates (x right, y down, pixel-edge
  convention) -- not WGS 84, so the file says ``"crs": "pixel"`` in its ``properties``; the photo's
  EXIF GPS position and time are properties of each feature.  :func:`photos_geojson` is a real
  WGS 84 point layer of the photos that carry a GPS position.
* **CSV**: :data:`CRACK_CSV_COLUMNS` per crack, :data:`IMAGE_CSV_COLUMNS` per image.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import numpy as np

from cracksam.data.rle import encode_rle
from cracksam.inspection.core import Inspection
from cracksam.inspection.geometry import crack_polygons, crack_polylines
from cracksam.measurement.report import CRACK_COLUMNS

__all__ = ["CRACK_CSV_COLUMNS", "IMAGE_CSV_COLUMNS", "coco_document", "csv_text", "geojson_document",
           "photos_geojson", "read_exif_gps"]

CRACK_CSV_COLUMNS = CRACK_COLUMNS + ["type", "angle_to_direction_deg", "loops", "branches_per_100px",
                                     "severity", "severity_width", "severity_unit"]
IMAGE_CSV_COLUMNS = ["image", "photo", "width", "height", "mm_per_px", "n_cracks", "total_length_px",
                     "total_area_px", "mean_width_px", "max_width_px", "total_length_mm", "total_area_mm2",
                     "max_width_mm", "crack_density_px_per_mpx", "worst_severity", "severity_scheme",
                     "latitude", "longitude", "altitude_m", "datetime", "error"]


def csv_text(columns: list[str], rows: Iterable[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buf.getvalue()


# -- EXIF ---------------------------------------------------------------------------------------

_GPS_IFD, _EXIF_IFD = 0x8825, 0x8769
_DATETIME, _DATETIME_ORIGINAL = 306, 36867


def _degrees(value: Any, ref: Any) -> float | None:
    try:
        d, m, s = (float(v) for v in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    deg = d + m / 60.0 + s / 3600.0
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    if str(ref).strip().upper() in ("S", "W"):
        deg = -deg
    return deg if math.isfinite(deg) else None


def read_exif_gps(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``latitude``, ``longitude`` (WGS 84 degrees), ``altitude_m`` and ``datetime`` (ISO 8601, the
    camera's local time) from a photo's EXIF; keys are absent when the photo lacks them.  A photo
    without EXIF, or a file Pillow cannot open, gives ``{}``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            exif = im.getexif()
    except (OSError, UnidentifiedImageError, ValueError):
        return {}
    out: dict[str, Any] = {}
    gps = exif.get_ifd(_GPS_IFD)
    lat, lon = _degrees(gps.get(2), gps.get(1)), _degrees(gps.get(4), gps.get(3))
    if lat is not None and lon is not None and abs(lat) <= 90 and abs(lon) <= 180:
        out["latitude"], out["longitude"] = round(lat, 7), round(lon, 7)
        try:
            alt = float(gps[6])
            below = gps.get(5) in (1, b"\x01")
            out["altitude_m"] = round(-alt if below else alt, 3)
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            pass
    stamp = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    if isinstance(stamp, str):
        try:
            out["datetime"] = datetime.strptime(stamp.strip("\x00 "), "%Y:%m:%d %H:%M:%S").isoformat()
        except ValueError:
            pass
    return out


# -- COCO ---------------------------------------------------------------------------------------

def _crack_rle(labels: np.ndarray, crack_id: int, bbox: tuple[int, int, int, int], mask_utils) -> dict[str, Any]:
    """Compressed COCO RLE of one crack: the one encoder (:func:`cracksam.data.rle.encode_rle`) on
    its bounding box only -- comparing the whole label image once per crack would cost (pixels x
    cracks) on a large survey photo -- compressed by ``pycocotools``."""
    height, width = labels.shape
    x, y, w, h = bbox
    rle = encode_rle(labels[y : y + h, x : x + w] == crack_id, image_size=(height, width), origin=(x, y))
    return mask_utils.frPyObjects({"size": rle["size"], "counts": rle["counts"]}, height, width)


def coco_document(images: list[dict[str, Any]], inspections: list[Inspection], info: dict[str, Any]) -> dict[str, Any]:
    """COCO instances: ``images`` are ``{"file_name", ...}`` dicts (ids are given here, from 1),
    one per inspection, in the same order."""
    from pycocotools import mask as mask_utils

    coco_images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, (image, ins) in enumerate(zip(images, inspections, strict=True), start=1):
        width, height = ins.measure.image_size
        coco_images.append({"id": image_id, "width": width, "height": height, **image})
        for crack, cls, grade in zip(ins.measure.cracks, ins.classes, ins.grades, strict=True):
            x, y, w, h = crack.bbox
            rle = _crack_rle(ins.labels, crack.id, crack.bbox, mask_utils)
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": 1,
                "segmentation": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")},
                "area": int(crack.area_px),
                "bbox": [x, y, w, h],
                "iscrowd": 0,
                "attributes": {"crack_id": crack.id, "type": cls.type, "severity": grade.label,
                               "length_px": round(crack.length_px, 4), "mean_width_px": round(crack.mean_width_px, 4),
                               "max_width_px": round(crack.max_width_px, 4)},
            })
    return {"info": info, "licenses": [], "images": coco_images, "annotations": annotations,
            "categories": [{"id": 1, "name": "crack", "supercategory": "defect"}]}


# -- GeoJSON ------------------------------------------------------------------------------------

def geojson_document(ins: Inspection, image: str, gps: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per crack a centre-line and an outline feature of one image, in pixel coordinates."""
    gps = gps or {}
    width, height = ins.measure.image_size
    features = []
    for crack, cls, grade in zip(ins.measure.cracks, ins.classes, ins.grades, strict=True):
        props = {"image": image, "crack_id": crack.id, "type": cls.type, "severity": grade.label,
                 "length_px": round(crack.length_px, 4), "mean_width_px": round(crack.mean_width_px, 4),
                 "max_width_px": round(crack.max_width_px, 4), "area_px": crack.area_px,
                 "length_mm": None if crack.length_mm is None else round(crack.length_mm, 4),
                 "max_width_mm": None if crack.max_width_mm is None else round(crack.max_width_mm, 4), **gps}
        lines = crack_polylines(ins.labels, crack.id, crack.bbox)
        polys = crack_polygons(ins.labels, crack.id, crack.bbox)
        features.append({"type": "Feature", "id": f"{image}#{crack.id}/centreline",
                         "geometry": {"type": "MultiLineString",
                                      "coordinates": lines},
                         "properties": {**props, "role": "centreline"}})
        features.append({"type": "Feature", "id": f"{image}#{crack.id}/outline",
                         "geometry": {"type": "MultiPolygon",
                                      "coordinates": polys},
                         "properties": {**props, "role": "outline"}})
    return {"type": "FeatureCollection",
            "properties": {"image": image, "crs": "pixel", "width": width, "height": height,
                           "coordinate_system": "pixels: x right, y down, pixel (c, r) spans [c, c+1] x [r, r+1]",
                           **gps},
            "features": features}


def photos_geojson(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """WGS 84 points (RFC 7946) of the photos with a GPS position; ``rows`` are per-image rows."""
    features = []
    for row in rows:
        if row.get("latitude") is None or row.get("longitude") is None:
            continue
        point = [row["longitude"], row["latitude"]] + ([row["altitude_m"]] if row.get("altitude_m") is not None else [])
        props = {k: row.get(k) for k in ("image", "photo", "datetime", "n_cracks", "total_length_px", "total_length_mm",
                                          "max_width_px", "max_width_mm", "worst_severity")}
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": point}, "properties": props})
    return {"type": "FeatureCollection", "features": features}
