"""Crack measurement on drawn shapes of known geometry: lengths, widths, branches, scales, the mask
reader, the report writers and the annotation with its legend (the command: test_measure_cli.py)."""

from __future__ import annotations

import csv
import json
import math

import cv2
import numpy as np
import pytest

from cracksam.errors import CrackSAMError
from cracksam.measurement import (
    MeasurementError,
    measure_mask,
    read_binary_mask,
    render_annotation,
    result_to_dict,
    scale_from_points,
    write_csv,
    write_json,
)
from cracksam.measurement.render import legend_box

SHAPE = (400, 400)
CENTRE = (200.3, 200.2)  # off the pixel grid on purpose


def _grid() -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]].astype(float)
    return xx, yy


def bar(length: float, width: float, angle_deg: float = 0.0, centre=CENTRE) -> np.ndarray:
    """Rectangle ``length`` x ``width`` px, its long axis at ``angle_deg`` counter-clockwise."""
    xx, yy = _grid()
    a = math.radians(angle_deg)
    u = (xx - centre[0]) * math.cos(a) - (yy - centre[1]) * math.sin(a)
    v = (xx - centre[0]) * math.sin(a) + (yy - centre[1]) * math.cos(a)
    return (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2)


def arc(radius: float, start_deg: float, stop_deg: float, width: float) -> np.ndarray:
    """Annulus sector of centre-line radius ``radius``, cut radially at both ends."""
    xx, yy = _grid()
    r = np.hypot(xx - CENTRE[0], yy - CENTRE[1])
    t = np.degrees(np.arctan2(-(yy - CENTRE[1]), xx - CENTRE[0]))
    return (np.abs(r - radius) <= width / 2) & (t >= start_deg) & (t <= stop_deg)


def capsule(mask: np.ndarray, p, q, width: float) -> None:
    """Add the segment p-q with round ends (all points within width/2 of it)."""
    xx, yy = _grid()
    p, q = np.asarray(p, float), np.asarray(q, float)
    d = q - p
    t = np.clip(((xx - p[0]) * d[0] + (yy - p[1]) * d[1]) / (d @ d), 0, 1)
    mask |= np.hypot(xx - p[0] - t * d[0], yy - p[1] - t * d[1]) <= width / 2


def only_crack(mask: np.ndarray, **kwargs):
    result = measure_mask(mask, **kwargs)
    assert len(result.cracks) == 1
    return result.cracks[0]


# --- "Done when" points -------------------------------------------------------------------


def test_straight_crack_200_by_5() -> None:
    mask = np.zeros(SHAPE, np.uint8)
    mask[150:155, 100:300] = 255  # exactly 200 px long, 5 px wide
    crack = only_crack(mask)
    assert crack.length_px == pytest.approx(200, rel=0.03)
    assert abs(crack.mean_width_px - 5) <= 1
    assert abs(crack.median_width_px - 5) <= 1
    assert abs(crack.max_width_px - 5) <= 1
    assert crack.area_px == 1000
    assert crack.bbox == (100, 150, 200, 5)
    assert crack.orientation_deg == pytest.approx(0, abs=0.5)
    x, y = crack.widest_point
    assert 100 <= x < 300 and 150 <= y < 155


def test_straight_crack_drawn_with_cv2_line() -> None:
    mask = np.zeros(SHAPE, np.uint8)
    cv2.line(mask, (100, 200), (299, 200), 255, 1)
    crack = only_crack(mask)
    assert crack.length_px == pytest.approx(200, rel=0.03)
    assert crack.median_width_px == pytest.approx(1)


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 7, 9, 11, 15])
def test_width_of_axis_aligned_bars(width: int) -> None:
    mask = np.zeros(SHAPE, bool)
    mask[180 : 180 + width, 100:300] = True
    crack = only_crack(mask)
    assert abs(crack.median_width_px - width) <= 1
    if width % 2:  # the ridge pixel sits on the centre line: exact
        assert crack.median_width_px == pytest.approx(width)
    assert crack.length_px == pytest.approx(200, rel=0.03)
    vertical = only_crack(mask.T.copy())
    assert vertical.median_width_px == pytest.approx(crack.median_width_px)
    assert vertical.orientation_deg == pytest.approx(90, abs=0.5)


@pytest.mark.parametrize("angle", [45, -45, 30, 60])
@pytest.mark.parametrize("width", [1, 5, 9])
def test_diagonal_crack(angle: float, width: float) -> None:
    crack = only_crack(bar(200, width, angle))
    assert crack.length_px == pytest.approx(200, rel=0.05)
    assert abs(crack.median_width_px - width) <= 1
    assert crack.orientation_deg == pytest.approx(angle, abs=1.0)


@pytest.mark.parametrize("radius,start,stop", [(120, -60, 85), (60, 0, 170), (150, -30, 45)])
@pytest.mark.parametrize("width", [1, 5, 9])
def test_curved_crack(radius: float, start: float, stop: float, width: float) -> None:
    expected = radius * math.radians(stop - start)
    crack = only_crack(arc(radius, start, stop, width))
    assert crack.length_px == pytest.approx(expected, rel=0.05)
    assert abs(crack.median_width_px - width) <= 1


def test_curved_crack_drawn_with_cv2_ellipse() -> None:
    radius, span = 100, 120
    mask = np.zeros(SHAPE, np.uint8)
    cv2.ellipse(mask, (200, 200), (radius, radius), 0, 0, span, 255, 1)
    crack = only_crack(mask)
    assert crack.length_px == pytest.approx(radius * math.radians(span), rel=0.05)


@pytest.mark.parametrize("width", [1, 3, 5])
def test_y_shaped_crack_sums_its_branches(width: float) -> None:
    centre = (200.0, 200.0)
    arms = [(100, 90), (80, 210), (60, 330)]  # length, direction (degrees, counter-clockwise)
    mask = np.zeros(SHAPE, bool)
    for length, angle in arms:
        end = (centre[0] + length * math.cos(math.radians(angle)), centre[1] - length * math.sin(math.radians(angle)))
        capsule(mask, centre, end, width)
    crack = only_crack(mask)
    # each free end of a round-capped stroke reaches width/2 beyond its segment
    expected = sum(length for length, _ in arms) + 3 * width / 2
    assert crack.length_px == pytest.approx(expected, rel=0.05)
    assert crack.n_branches == 3


def test_y_drawn_with_cv2_lines() -> None:
    mask = np.zeros(SHAPE, np.uint8)
    for end in [(200, 100), (113, 250), (287, 250)]:
        cv2.line(mask, (200, 200), end, 255, 1)
    expected = 100 + 2 * math.hypot(87, 50)
    crack = only_crack(mask)
    assert crack.length_px == pytest.approx(expected, rel=0.05)
    assert crack.n_branches == 3


def test_two_separate_cracks_are_two() -> None:
    mask = np.zeros(SHAPE, np.uint8)
    mask[50:53, 20:220] = 1
    cv2.line(mask, (50, 150), (350, 350), 1, 1)
    result = measure_mask(mask)
    assert result.totals.n_cracks == 2 == len(result.cracks)
    assert [c.id for c in result.cracks] == [1, 2]
    lengths = sorted(c.length_px for c in result.cracks)
    assert lengths[0] == pytest.approx(200, rel=0.03)
    assert lengths[1] == pytest.approx(math.hypot(300, 200), rel=0.05)
    assert result.totals.total_length_px == pytest.approx(sum(lengths))
    assert result.totals.total_area_px == sum(c.area_px for c in result.cracks)


def test_touching_diagonally_is_one_crack() -> None:
    mask = np.zeros((40, 40), bool)
    mask[10, 5:20] = True
    mask[11, 20:35] = True  # 8-connected to the first run
    assert measure_mask(mask).totals.n_cracks == 1


def test_crack_cut_by_the_image_frame() -> None:
    mask = np.zeros((30, 100), bool)
    mask[:3] = True  # runs along the top edge: outside the image counts as background
    crack = only_crack(mask)
    assert crack.median_width_px == pytest.approx(3) and crack.max_width_px == pytest.approx(3)
    assert crack.length_px == pytest.approx(100, rel=0.03)
    full = only_crack(np.ones((20, 20), bool))
    assert math.isfinite(full.max_width_px) and full.max_width_px <= 20


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.float32])
def test_empty_mask_gives_zero_cracks(dtype) -> None:
    result = measure_mask(np.zeros((64, 48), dtype), mm_per_px=0.1)
    assert result.cracks == []
    assert result.totals.n_cracks == 0
    assert result.totals.total_length_px == 0 and result.totals.max_width_px == 0
    assert result.totals.total_length_mm == 0
    assert result.image_size == (48, 64)
    report = result_to_dict(result)
    assert report["cracks"] == [] and report["totals"]["n_cracks"] == 0
    assert render_annotation(np.zeros((64, 48), bool), result).shape == (64, 48, 3)


def test_min_length_filter() -> None:
    mask = np.zeros((100, 100), bool)
    mask[10, 10:15] = True  # 5 px dash
    mask[50, 10:90] = True  # 80 px
    result = measure_mask(mask)
    assert result.totals.n_cracks == 1 and result.totals.n_discarded == 1
    assert measure_mask(mask, min_length_px=0).totals.n_cracks == 2
    assert measure_mask(mask, min_length_px=100).totals.n_cracks == 0
    dot = np.zeros((9, 9), bool)
    dot[4, 4] = True
    assert only_crack(dot, min_length_px=0).length_px == pytest.approx(1)


def test_scale_of_0_1_mm_per_px_converts() -> None:
    mask = np.zeros(SHAPE, np.uint8)
    mask[150:155, 100:300] = 1
    px = only_crack(mask)
    mm = measure_mask(mask, mm_per_px=0.1)
    crack = mm.cracks[0]
    assert px.length_mm is None and px.max_width_mm is None and px.area_mm2 is None
    assert crack.length_mm == pytest.approx(px.length_px * 0.1)
    assert crack.length_mm == pytest.approx(20.0, rel=0.03)
    assert crack.mean_width_mm == pytest.approx(px.mean_width_px * 0.1)
    assert crack.median_width_mm == pytest.approx(0.5, abs=0.1)
    assert crack.max_width_mm == pytest.approx(px.max_width_px * 0.1)
    assert crack.area_mm2 == pytest.approx(1000 * 0.01)
    assert mm.totals.total_length_mm == pytest.approx(crack.length_mm)
    assert mm.totals.max_width_mm == pytest.approx(crack.max_width_mm)
    assert mm.mm_per_px == 0.1
    assert "0.1 mm" in result_to_dict(mm)["resolution_note"]
    assert "unknown" in result_to_dict(measure_mask(mask))["resolution_note"]


def test_scale_from_points() -> None:
    assert scale_from_points((0, 0), (30, 40), 10.0) == pytest.approx(0.2)
    assert scale_from_points((10.5, 3), (10.5, 103), 25) == pytest.approx(0.25)
    with pytest.raises(MeasurementError, match="coincide"):
        scale_from_points((5, 5), (5, 5), 10)
    for bad in (0, -3, float("nan")):
        with pytest.raises(MeasurementError, match="positive"):
            scale_from_points((0, 0), (1, 0), bad)
    assert issubclass(MeasurementError, CrackSAMError)


def test_bad_arguments() -> None:
    with pytest.raises(MeasurementError):
        measure_mask(np.zeros((4, 4)), mm_per_px=0)
    with pytest.raises(MeasurementError):
        measure_mask(np.zeros((4, 4)), min_length_px=-1)
    with pytest.raises(MeasurementError):
        measure_mask(np.zeros((2, 3, 4, 5)))


# --- files ----------------------------------------------------------------------------------


def _two_crack_mask() -> np.ndarray:
    mask = np.zeros((120, 160), np.uint8)
    mask[20:25, 10:150] = 255
    cv2.line(mask, (10, 110), (150, 60), 255, 1)
    return mask


def test_read_mask_formats(tmp_path) -> None:
    mask = _two_crack_mask()
    cv2.imwrite(str(tmp_path / "m255.png"), mask)
    cv2.imwrite(str(tmp_path / "m01.png"), (mask > 0).astype(np.uint8))
    rgb = np.zeros((*mask.shape, 3), np.uint8)
    rgb[..., 2] = mask  # red only
    cv2.imwrite(str(tmp_path / "rgb.png"), rgb)
    for name in ("m255.png", "m01.png", "rgb.png"):
        assert np.array_equal(read_binary_mask(tmp_path / name), mask > 0), name
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(MeasurementError, match="empty.png: file is empty"):
        read_binary_mask(tmp_path / "empty.png")
    with pytest.raises(MeasurementError, match="text.png: not a readable image"):
        read_binary_mask(tmp_path / "text.png")
    with pytest.raises(MeasurementError, match="missing.png: file not found"):
        read_binary_mask(tmp_path / "missing.png")


def test_writers_and_annotation(tmp_path) -> None:
    result = measure_mask(_two_crack_mask(), mm_per_px=0.05)
    write_json(result, tmp_path / "r.json", source="m.png")
    write_csv(result, tmp_path / "r.csv", source="m.png")
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["image"] == "m.png" and report["mm_per_px"] == 0.05
    assert report["image_size"] == {"width": 160, "height": 120}
    assert len(report["cracks"]) == 2 and report["totals"]["n_cracks"] == 2
    assert set(report["cracks"][0]) >= {"length_px", "length_mm", "max_width_mm", "bbox", "widest_point"}
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == 2 and rows[0]["image"] == "m.png"
    assert float(rows[0]["length_mm"]) == pytest.approx(float(rows[0]["length_px"]) * 0.05, rel=1e-3)

    picture = render_annotation(_two_crack_mask(), result)
    assert picture.shape == (120, 160, 3) and picture.dtype == np.uint8
    skeleton = result.width_map > 0
    assert skeleton.sum() > 100
    coloured = picture[skeleton]
    grey = (coloured[:, 0] == coloured[:, 1]) & (coloured[:, 1] == coloured[:, 2])
    assert grey.mean() < 0.05  # the skeleton is drawn in colour over the grey mask
    with pytest.raises(MeasurementError, match="160x120"):
        render_annotation(np.zeros((10, 10, 3), np.uint8), result)


# --- the annotation's legend -----------------------------------------------------------------


def _mask_with_cracks_in(corners: list[str], size=(240, 320)) -> np.ndarray:
    h, w = size
    mask = np.zeros(size, np.uint8)
    where = {"lower left": (20, h - 12), "lower right": (w - 100, h - 12), "upper left": (20, 12),
             "upper right": (w - 100, 12)}
    for corner in corners:
        x, y = where[corner]
        cv2.line(mask, (x, y), (x + 80, y), 255, 5)
    return mask


def test_the_legend_goes_to_a_corner_clear_of_the_crack_circles():
    shape = (240, 320)
    # Circles in both lower corners: the legend moves up.
    box = legend_box(shape, "width 0-5.0 px", 0.4, 1, [(30, 225, 8), (300, 225, 8)])
    assert box[3] < shape[0] // 2
    # With no crack in the way it keeps its place, lower left.
    x0, y0, _, _ = legend_box(shape, "width 0-5.0 px", 0.4, 1, [])
    assert x0 < shape[1] // 2 and y0 > shape[0] // 2
    # On a real measurement no circle touches the legend.
    mask = _mask_with_cracks_in(["lower left", "upper left", "upper right"])
    result = measure_mask(mask)
    marks = [(c.widest_point[0], c.widest_point[1], max(5, int(np.ceil(c.max_width_px / 2)) + 3))
             for c in result.cracks]
    x0, y0, x1, y1 = legend_box(mask.shape, f"width 0-{result.totals.max_width_px:.1f} px", 0.4, 1, marks)
    for cx, cy, r in marks:
        assert not (cx + r >= x0 and cx - r <= x1 and cy + r >= y0 and cy - r <= y1)


def test_legend_text_is_white_on_black_not_an_outline_blur():
    mask = _mask_with_cracks_in(["upper right"])
    result = measure_mask(mask)
    picture = render_annotation(mask, result)
    label = f"width 0-{result.totals.max_width_px:.1f} px"
    box = legend_box(mask.shape, label, 0.4, 1, [(c.widest_point[0], c.widest_point[1], 8) for c in result.cracks])
    x0, y0, x1, _ = box
    (_, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    text_area = picture[y0 + 1 : y0 + th + 4, x0 + 1 : x1 - 1].astype(int)
    grey = np.abs(text_area - text_area.mean(axis=2, keepdims=True)).max(axis=2) < 8
    assert grey.all()  # only black, white and anti-aliased grey: no colour bleeding into the label
    assert (text_area.max(axis=2) > 200).sum() > 20 and (text_area.max(axis=2) < 30).mean() > 0.4


def test_the_docstring_names_the_circle_colour_it_draws():
    from cracksam.measurement import render

    assert render._MARK == (255, 0, 255)
    import re

    doc = render.render_annotation.__doc__
    assert "magenta" in doc and not re.search(r"\bred\b", doc)
