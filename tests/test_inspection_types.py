"""Crack types and severity bands on drawn masks of known shape."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cracksam.errors import ConfigError
from cracksam.inspection import (
    SCHEMES,
    Band,
    SeverityScheme,
    TypeRules,
    angle_to_direction,
    inspect_mask,
    inspection_to_dict,
    load_scheme,
)

from .test_measure import bar, capsule

SHAPE = (400, 400)


def kinds(mask, **kw) -> list[str]:
    return [c.type for c in inspect_mask(mask, **kw).classes]


# -- types ----------------------------------------------------------------------------------------


def test_horizontal_line_is_transverse_to_the_default_vertical_direction():
    mask = bar(300, 4, 0)
    assert kinds(mask) == ["transverse"]
    assert kinds(mask, rules=TypeRules(direction_deg=0)) == ["longitudinal"]


def test_vertical_line_is_longitudinal_by_default_and_transverse_across_a_horizontal_direction():
    mask = bar(300, 4, 90)
    assert kinds(mask) == ["longitudinal"]
    assert kinds(mask, rules=TypeRules(direction_deg=0)) == ["transverse"]


@pytest.mark.parametrize("angle", [45.0, -45.0, 135.0])
def test_line_at_45_degrees_is_diagonal(angle):
    ins = inspect_mask(bar(300, 4, angle))
    assert [c.type for c in ins.classes] == ["diagonal"]
    assert ins.classes[0].angle_to_direction_deg == pytest.approx(45, abs=1)


def test_tolerance_sets_the_longitudinal_diagonal_boundary():
    mask = bar(300, 4, 90 - 25)  # 25 degrees off the vertical direction
    assert kinds(mask, rules=TypeRules(tolerance_deg=30)) == ["longitudinal"]
    assert kinds(mask, rules=TypeRules(tolerance_deg=20)) == ["diagonal"]


def test_angle_to_direction_folds_undirected_lines():
    assert angle_to_direction(10, 90) == pytest.approx(80)
    assert angle_to_direction(-80, 90) == pytest.approx(10)
    assert angle_to_direction(179, 0) == pytest.approx(1)
    assert angle_to_direction(90, -90) == pytest.approx(0)


def grid(cells: int = 3, step: int = 60, width: int = 3) -> np.ndarray:
    mask = np.zeros(SHAPE, bool)
    lo, hi = 50, 50 + cells * step
    for k in range(cells + 1):
        v = lo + k * step
        mask[v : v + width, lo : hi + width] = True
        mask[lo : hi + width, v : v + width] = True
    return mask


def test_grid_of_loops_is_network():
    ins = inspect_mask(grid(3))
    assert [c.type for c in ins.classes] == ["network"]
    assert ins.classes[0].loops == 9


def test_a_single_loop_is_not_a_network_but_two_are():
    assert kinds(grid(1)) != ["network"]
    two = np.zeros(SHAPE, bool)
    two[100:103, 50:233] = two[160:163, 50:233] = True
    for x in (50, 140, 230):
        two[100:163, x : x + 3] = True
    assert kinds(two) == ["network"]
    assert kinds(two, rules=TypeRules(network_min_loops=3, network_min_branches=50)) != ["network"]


def test_pinholes_in_a_wide_crack_are_not_loops():
    mask = bar(300, 12, 0)
    mask[198:200, 100:102] = False  # a 4-pixel hole
    mask[198:200, 200:202] = False
    ins = inspect_mask(mask)
    assert ins.classes[0].loops == 0 and ins.classes[0].type == "transverse"
    assert inspect_mask(mask, rules=TypeRules(loop_min_area_px=4)).classes[0].loops == 2


def test_dense_branching_without_loops_is_network():
    mask = np.zeros(SHAPE, bool)
    capsule(mask, (50, 200), (350, 200), 3)
    for x in range(70, 340, 30):  # teeth up and down, a comb with no closed loop
        capsule(mask, (x, 200), (x, 170 if x % 60 else 230), 3)
    ins = inspect_mask(mask)
    assert ins.classes[0].loops == 0
    assert ins.classes[0].type == "network"
    assert inspect_mask(mask, rules=TypeRules(network_min_branches=100)).classes[0].type == "transverse"


def test_short_segment_alone_is_isolated_short_but_not_next_to_another_crack():
    mask = bar(30, 3, 90, centre=(100.3, 100.2))
    assert kinds(mask) == ["isolated_short"]
    mask |= bar(300, 3, 0, centre=(200.3, 125.2))  # 10 px below the short one's end
    ins = inspect_mask(mask)
    assert sorted(c.type for c in ins.classes) == ["longitudinal", "transverse"]
    assert kinds(mask, rules=TypeRules(isolation_gap_px=5)).count("isolated_short") == 1


def test_short_limit_in_mm_applies_when_the_scale_is_known():
    mask = bar(80, 3, 0)  # 80 px
    assert kinds(mask) == ["transverse"]  # default limit 50 px
    assert kinds(mask, mm_per_px=1.0, rules=TypeRules(short_length_mm=100)) == ["isolated_short"]
    assert kinds(mask, rules=TypeRules(short_length_mm=100)) == ["transverse"]  # no scale: px limit


@pytest.mark.parametrize("field,value", [("tolerance_deg", 60), ("direction_deg", float("nan")),
                                         ("network_min_loops", 0), ("short_length_px", -1)])
def test_invalid_rules_are_refused(field, value):
    with pytest.raises(ConfigError, match=field.replace("_", "-")):
        TypeRules(**{field: value})


# -- severity -------------------------------------------------------------------------------------


@pytest.mark.parametrize("width_px,expected", [(4, "low"), (9, "low"), (10, "medium"), (40, "medium"),
                                               (76, "high"), (80, "high")])
def test_astm_d6433_mean_width_bands(width_px, expected):
    ins = inspect_mask(bar(360, width_px, 0), mm_per_px=1.0)
    assert ins.scheme.name == "astm-d6433" and ins.severity_note is None
    assert ins.grades[0].width == pytest.approx(width_px, abs=0.01)
    assert ins.grades[0].label == expected


@pytest.mark.parametrize("width_px,expected", [(2, "low"), (4, "low"), (5, "medium"), (6, "medium"), (7, "high")])
def test_concrete_max_width_limits_0_2_and_0_3_mm(width_px, expected):
    ins = inspect_mask(bar(200, width_px, 0), mm_per_px=0.05, severity="concrete")  # 4 px = 0.2 mm
    assert ins.scheme.width == "max"
    assert ins.grades[0].width == pytest.approx(width_px * 0.05, abs=1e-6)
    assert ins.grades[0].label == expected


@pytest.mark.parametrize("width_px,expected", [(2, "low"), (3, "medium"), (7, "medium"), (8, "high")])
def test_without_a_scale_the_pixel_bands_are_used_and_said(width_px, expected):
    ins = inspect_mask(bar(200, width_px, 0), severity="concrete")
    assert ins.scheme.name == "pixels" and ins.requested_scheme.name == "concrete"
    assert "no pixel size" in ins.severity_note
    assert ins.grades[0].label == expected and ins.grades[0].unit == "px"
    doc = inspection_to_dict(ins)
    assert doc["inspection"]["severity_scheme"]["name"] == "pixels"
    assert "no pixel size" in doc["inspection"]["severity_note"]


def test_custom_scheme_from_a_file(tmp_path):
    path = tmp_path / "bridge.json"
    path.write_text(json.dumps({"name": "bridge", "unit": "mm", "width": "max", "closed": "right",
                                "bands": [{"label": "hairline", "upper": 0.1}, {"label": "fine", "upper": 0.5},
                                          {"label": "wide"}], "source": "owner's manual"}))
    scheme = load_scheme(str(path))
    assert scheme.labels == ["hairline", "fine", "wide"]
    ins = inspect_mask(bar(200, 4, 0), mm_per_px=0.1, severity=str(path))
    assert [g.label for g in ins.grades] == ["fine"]
    ins = inspect_mask(bar(200, 6, 0), mm_per_px=0.1, severity=str(path))
    assert [g.label for g in ins.grades] == ["wide"]


def test_yaml_scheme(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: y\nunit: px\nbands:\n  - {label: a, upper: 5}\n  - {label: b}\n")
    assert [g.label for g in inspect_mask(bar(200, 6, 0), severity=str(path)).grades] == ["b"]


@pytest.mark.parametrize("doc,match", [
    ({"bands": [{"label": "a", "upper": 2}, {"label": "b", "upper": 1}, {"label": "c"}]}, "increase"),
    ({"bands": [{"label": "a", "upper": 2}]}, "open-ended"),
    ({"bands": [{"label": "a", "upper": 2}, {"label": "a"}]}, "distinct"),
    ({"unit": "in", "bands": [{"label": "a"}]}, "unit"),
    ({"bands": [{"upper": 1}, {"label": "b"}]}, "label"),
    ({"bands": [], "colour": 1}, "unknown key"),
])
def test_invalid_scheme_files_are_refused(tmp_path, doc, match):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=match):
        load_scheme(str(path))


def test_unknown_scheme_name_lists_the_built_ins():
    with pytest.raises(ConfigError, match="astm-d6433, concrete, pixels"):
        load_scheme("asphalt-ish")


def test_scheme_descriptions_and_sources():
    assert SCHEMES["astm-d6433"].describe() == ["low: mean width < 10 mm", "medium: 10 mm <= mean width < 76 mm",
                                                "high: mean width >= 76 mm"]
    assert SCHEMES["concrete"].describe()[1] == "medium: 0.2 mm < max width <= 0.3 mm"
    assert "D6433" in SCHEMES["astm-d6433"].source and "1992" in SCHEMES["concrete"].source
    one = SeverityScheme("one", "px", "mean", (Band("all", None),), "x")
    assert [g.label for g in inspect_mask(bar(200, 4, 0), severity=one).grades] == ["all"]


def test_dict_has_type_severity_and_counts():
    mask = bar(300, 4, 0) | grid(2)
    doc = inspection_to_dict(inspect_mask(mask, mm_per_px=0.5), source="x")
    types = {c["id"]: c["type"] for c in doc["cracks"]}
    assert sorted(types.values()) == ["network", "transverse"]
    assert doc["inspection"]["types"]["network"] == 1
    assert sum(doc["inspection"]["severity"].values()) == len(doc["cracks"])
    assert doc["inspection"]["worst_severity"] == "low"
    assert all(c["severity"] == "low" for c in doc["cracks"])
    assert doc["inspection"]["type_rules"]["direction_deg"] == 90.0
