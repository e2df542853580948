"""Per-crack pixel geometry shared by the type rules and the exports.

Coordinates written out are in the *pixel-edge* convention (COCO's): pixel ``(col, row)`` covers
``[col, col + 1] x [row, row + 1]``, so its centre is ``(col + 0.5, row + 0.5)``; x right, y down.
"""

from __future__ import annotations

import cv2
import numpy as np

from cracksam.measurement import MeasureResult
from cracksam.measurement.measure import as_binary

__all__ = ["crack_label_map", "crack_polygons", "crack_polylines", "count_loops"]


def crack_label_map(mask: np.ndarray, result: MeasureResult) -> np.ndarray:
    """int32 image: crack ``id`` of ``result`` on its pixels, 0 elsewhere (discarded components too).

    ``measure_mask`` numbers the kept 8-connected components in label order, so walking the labels
    in order and matching each crack's bounding box and area recovers its component exactly.
    """
    binary = as_binary(mask).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    lut = np.zeros(n, np.int32)
    cracks = iter(result.cracks)
    crack = next(cracks, None)
    for lab in range(1, n):
        if crack is None:
            break
        x, y, w, h, area = (int(v) for v in stats[lab])
        if (x, y, w, h) == tuple(crack.bbox) and area == crack.area_px:
            lut[lab] = crack.id
            crack = next(cracks, None)
    if crack is not None:
        raise ValueError("the measurement does not belong to this mask")
    return lut[labels]


def _crop(labels: np.ndarray, crack_id: int, bbox: tuple[int, int, int, int], pad: int) -> tuple[np.ndarray, int, int]:
    x, y, w, h = bbox
    x0, y0 = max(x - pad, 0), max(y - pad, 0)
    x1, y1 = min(x + w + pad, labels.shape[1]), min(y + h + pad, labels.shape[0])
    return labels[y0:y1, x0:x1] == crack_id, x0, y0


def count_loops(component: np.ndarray, min_area_px: int) -> int:
    """Closed loops of a crack: background regions it encloses (4-connected, as the crack is
    8-connected) of at least ``min_area_px`` pixels; smaller ones are pinholes of a wide crack."""
    padded = cv2.copyMakeBorder(component.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    n, labels, stats, _ = cv2.connectedComponentsWithStats((padded == 0).astype(np.uint8), connectivity=4)
    outside = labels[0, 0]
    return int(sum(1 for lab in range(1, n) if lab != outside and stats[lab, cv2.CC_STAT_AREA] >= min_area_px))


def component(labels: np.ndarray, crack_id: int, bbox: tuple[int, int, int, int], pad: int = 0):
    """The crack's pixels cropped to its box (plus ``pad``) and the crop's offset ``(x0, y0)``."""
    return _crop(labels, crack_id, bbox, pad)


def crack_polylines(labels: np.ndarray, crack_id: int, bbox: tuple[int, int, int, int],
                    tolerance_px: float = 0.75) -> list[list[list[float]]]:
    """Centre lines of a crack: the branches of its skeleton (Lee's method, as the measurement),
    simplified by Douglas-Peucker within ``tolerance_px``; pixel-edge coordinates (x, y)."""
    from skimage.morphology import skeletonize

    comp, x0, y0 = _crop(labels, crack_id, bbox, 1)
    skel = skeletonize(comp, method="lee")
    pts = np.argwhere(skel)
    if len(pts) == 0:
        pts = np.argwhere(comp)[:1]
    if len(pts) == 1:  # a dot: a zero-length line would be invalid, give it one pixel
        r, c = pts[0]
        return [[[float(x0 + c), float(y0 + r) + 0.5], [float(x0 + c) + 1.0, float(y0 + r) + 0.5]]]
    from cracksam.measurement.skeleton_graph import skeleton_paths

    sk = skeleton_paths(skel)
    lines = []
    for i in range(sk.n_paths):
        coords = sk.coordinates[sk.indices[sk.indptr[i]:sk.indptr[i + 1]]]  # (row, col)
        xy: np.ndarray = np.stack([coords[:, 1] + x0 + 0.5, coords[:, 0] + y0 + 0.5], axis=1).astype(np.float32)
        if len(xy) > 2:
            xy = cv2.approxPolyDP(xy.reshape(-1, 1, 2), tolerance_px, False).reshape(-1, 2)
        if len(xy) >= 2:
            lines.append(np.round(xy.astype(np.float64), 2).tolist())
    return lines


def crack_polygons(labels: np.ndarray, crack_id: int,
                   bbox: tuple[int, int, int, int]) -> list[list[list[list[float]]]]:
    """Outline of a crack as polygons with holes (``[exterior, hole, ...]`` each), closed rings.

    Traced on the mask upsampled 2x so that a one-pixel-wide crack still has an area: the rings
    run through the centres of the boundary half-pixels, a quarter pixel inside the pixel edges.
    """
    comp, x0, y0 = _crop(labels, crack_id, bbox, 1)
    fine = cv2.resize(comp.astype(np.uint8), (comp.shape[1] * 2, comp.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    contours, hierarchy = cv2.findContours(fine, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    hierarchy = hierarchy[0]

    def ring(contour: np.ndarray) -> list[list[float]]:
        xy = (contour.reshape(-1, 2).astype(np.float64) + 0.5) / 2 + (x0, y0)
        pts = np.round(xy, 3).tolist()  # lists of [x, y], as GeoJSON wants (numpy's scalar round() is slow)
        while len(pts) < 3:  # a single fine pixel: its 4 corners would be one point; widen it
            pts.append(pts[-1])
        return pts + [pts[0]]

    polygons = []
    for i, contour in enumerate(contours):
        if hierarchy[i][3] != -1:  # a hole: attached to its parent below
            continue
        rings = [ring(contour)]
        child = hierarchy[i][2]
        while child != -1:
            rings.append(ring(contours[child]))
            child = hierarchy[child][0]
        polygons.append(rings)
    return polygons
