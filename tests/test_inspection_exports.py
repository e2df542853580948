"""COCO, GeoJSON and CSV exports, EXIF GPS, and the survey folder (``cracksam report``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from cracksam.cli.main import main
from cracksam.inspection import inspect_mask
from cracksam.inspection.exports import coco_document, geojson_document, read_exif_gps
from cracksam.inspection.report_folder import SurveyOptions, build_survey, discover_items

from .test_inspection_types import grid
from .test_measure import bar

pycocotools_mask = pytest.importorskip("pycocotools.mask")


def three_cracks() -> np.ndarray:
    mask = grid(2)  # a network at 50..173
    mask |= bar(150, 4, 0, centre=(250.3, 300.2))  # transverse
    mask |= bar(20, 3, 90, centre=(350.3, 60.2))  # isolated short
    return mask


def gps_jpeg(path: Path, rgb: np.ndarray, lat=(52.0, 30.0, 15.5), lat_ref="N", lon=(13.0, 24.0, 0.5), lon_ref="W",
             when="2024:05:06 07:08:09") -> None:
    exif = Image.Exif()
    exif[306] = when
    gps = exif.get_ifd(0x8825)
    gps.update({1: lat_ref, 2: lat, 3: lon_ref, 4: lon, 5: 0, 6: 34.5})
    Image.fromarray(rgb).save(path, exif=exif, quality=95)


# -- COCO -----------------------------------------------------------------------------------------


def test_coco_round_trip_decodes_to_the_same_crack_masks(tmp_path):
    from pycocotools.coco import COCO

    masks = [three_cracks(), bar(200, 5, 30)]
    inspections = [inspect_mask(m) for m in masks]
    doc = coco_document([{"file_name": "a.jpg"}, {"file_name": "b.jpg"}], inspections, {"description": "t"})
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(doc))
    coco = COCO(str(path))
    assert sorted(coco.getImgIds()) == [1, 2]
    for image_id, (mask, ins) in enumerate(zip(masks, inspections, strict=True), start=1):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        assert len(anns) == len(ins.measure.cracks)
        union = np.zeros(mask.shape, bool)
        for ann, crack, cls in zip(anns, ins.measure.cracks, ins.classes, strict=True):
            decoded = coco.annToMask(ann).astype(bool)
            np.testing.assert_array_equal(decoded, ins.labels == crack.id)
            assert ann["area"] == decoded.sum() == crack.area_px
            assert ann["bbox"] == list(crack.bbox)
            assert ann["attributes"]["type"] == cls.type
            assert not (union & decoded).any()  # one instance per crack, no overlaps
            union |= decoded
        np.testing.assert_array_equal(union, mask)  # every crack pixel (no crack is short here)
    assert coco.loadCats(1)[0]["name"] == "crack"


# -- GeoJSON --------------------------------------------------------------------------------------


def _positions(geometry):
    if geometry["type"] == "MultiLineString":
        return [p for line in geometry["coordinates"] for p in line]
    return [p for poly in geometry["coordinates"] for ring in poly for p in ring]


def test_geojson_geometry_types_and_coordinates_inside_the_image():
    mask = three_cracks()
    mask[0:3, 0:120] = True  # a crack on the image border
    ins = inspect_mask(mask)
    doc = geojson_document(ins, "road", {"latitude": 1.0})
    height, width = mask.shape
    assert doc["type"] == "FeatureCollection" and doc["properties"]["crs"] == "pixel"
    n = len(ins.measure.cracks)
    assert len(doc["features"]) == 2 * n
    roles = [(f["properties"]["crack_id"], f["properties"]["role"], f["geometry"]["type"]) for f in doc["features"]]
    for crack in ins.measure.cracks:
        assert (crack.id, "centreline", "MultiLineString") in roles
        assert (crack.id, "outline", "MultiPolygon") in roles
    for feature in doc["features"]:
        assert feature["type"] == "Feature" and feature["properties"]["latitude"] == 1.0
        g = feature["geometry"]
        assert g["coordinates"], feature["id"]
        for x, y in _positions(g):
            assert 0 <= x <= width and 0 <= y <= height
        if g["type"] == "MultiLineString":
            assert all(len(line) >= 2 for line in g["coordinates"])
        else:
            for poly in g["coordinates"]:
                for ring in poly:
                    assert len(ring) >= 4 and ring[0] == ring[-1]


def test_geojson_outline_covers_the_crack_and_holes_are_the_loops():
    ins = inspect_mask(grid(2))
    doc = geojson_document(ins, "g")
    outline = next(f for f in doc["features"] if f["properties"]["role"] == "outline")
    polys = outline["geometry"]["coordinates"]
    assert len(polys) == 1 and len(polys[0]) == 1 + 4  # exterior + the 4 loops of a 2x2 grid
    canvas = np.zeros((800, 800), np.uint8)  # fill the rings at 2x and compare with the mask
    cv2.fillPoly(canvas, [np.round(np.array(r) * 2 - 0.5).astype(np.int32) for r in polys[0]], 1)
    back = cv2.resize(canvas, (400, 400), interpolation=cv2.INTER_AREA) > 0
    assert (back ^ grid(2)).sum() <= 0.02 * grid(2).sum()


def test_gps_and_time_read_from_a_jpeg_with_exif(tmp_path):
    path = tmp_path / "photo.jpg"
    gps_jpeg(path, np.zeros((40, 60, 3), np.uint8))
    got = read_exif_gps(path)
    assert got["latitude"] == pytest.approx(52 + 30 / 60 + 15.5 / 3600, abs=1e-6)
    assert got["longitude"] == pytest.approx(-(13 + 24 / 60 + 0.5 / 3600), abs=1e-6)  # W is negative
    assert got["altitude_m"] == pytest.approx(34.5)
    assert got["datetime"] == "2024-05-06T07:08:09"
    plain = tmp_path / "plain.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(plain)
    assert read_exif_gps(plain) == {}
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    assert read_exif_gps(tmp_path / "junk.jpg") == {}


# -- the survey folder ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """predict-like results for two photos (one with GPS) and a mask that does not match its photo."""
    root = tmp_path_factory.mktemp("survey")
    res, photos = root / "results", root / "photos"
    res.mkdir()
    photos.mkdir()
    rng = np.random.default_rng(0)
    masks = {"road_a": three_cracks(), "road_b": bar(300, 6, 45), "road_c": np.zeros((400, 400), bool)}
    for name, mask in masks.items():
        cv2.imwrite(str(res / f"{name}_mask.png"), mask.astype(np.uint8) * 255)
        rgb = rng.integers(60, 200, (400, 400, 3), dtype=np.uint8)
        if name == "road_a":
            gps_jpeg(photos / f"{name}.jpg", rgb)
        else:
            Image.fromarray(rgb).save(photos / f"{name}.png")
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(photos / "road_c.png")  # wrong size
    out = root / "report"
    code = main(["report", str(res), "--images", str(photos), "--out", str(out), "--mm-per-px", "0.5",
                 "--no-progress"])
    return {"root": root, "out": out, "code": code, "masks": masks,
            "doc": json.loads((out / "inspection.json").read_text())}


def test_report_folder_has_every_output(survey):
    out, doc = survey["out"], survey["doc"]
    assert survey["code"] == 1  # road_c failed (photo size), the others were inspected
    assert [e["name"] for e in doc["errors"]] == ["road_c"] and "10x10" in doc["errors"][0]["error"]
    assert [im["name"] for im in doc["images"]] == ["road_a", "road_b"]
    for name in ("report.html", "cracks.csv", "images.csv", "coco.json", "photos.geojson",
                 "overlays/road_a.png", "overlays/road_b.png", "geojson/road_a.geojson", "geojson/road_b.geojson"):
        assert (out / name).is_file(), name
    assert cv2.imread(str(out / "overlays/road_a.png")).shape == (400, 400, 3)


def test_report_numbers_agree_across_json_csv_coco(survey):
    out, doc = survey["out"], survey["doc"]
    s = doc["summary"]
    a = doc["images"][0]
    assert s["unit"] == "mm" and s["cracks"] == sum(len(im["cracks"]) for im in doc["images"]) == 4
    assert a["inspection"]["types"]["network"] == 1 and a["inspection"]["types"]["isolated_short"] == 1
    assert doc["images"][1]["cracks"][0]["type"] == "diagonal"
    assert s["total_length"] == pytest.approx(sum(im["totals"]["total_length_mm"] for im in doc["images"]), abs=1e-3)
    assert s["images_by_worst_severity"] == {"low": 2, "medium": 0, "high": 0, "none": 0}
    rows = list(csv.DictReader((out / "cracks.csv").open()))
    assert len(rows) == 4
    assert [(r["image"], r["type"], r["severity"]) for r in rows] == [
        (im["name"], c["type"], c["severity"]) for im in doc["images"] for c in im["cracks"]]
    assert float(rows[0]["length_px"]) == a["cracks"][0]["length_px"]
    images = {r["image"]: r for r in csv.DictReader((out / "images.csv").open())}
    assert images["road_c"]["error"] and images["road_a"]["latitude"] and not images["road_b"]["latitude"]
    coco = json.loads((out / "coco.json").read_text())
    assert [i["file_name"] for i in coco["images"]] == ["road_a.jpg", "road_b.png"]
    assert len(coco["annotations"]) == 4
    assert coco["images"][0]["latitude"] == pytest.approx(52.504306, abs=1e-6)


def test_geojson_files_carry_the_photo_gps(survey):
    out = survey["out"]
    a = json.loads((out / "geojson/road_a.geojson").read_text())
    assert all(f["properties"]["latitude"] == pytest.approx(52.504306, abs=1e-6) for f in a["features"])
    assert a["properties"]["datetime"] == "2024-05-06T07:08:09"
    b = json.loads((out / "geojson/road_b.geojson").read_text())
    assert "latitude" not in b["properties"]
    points = json.loads((out / "photos.geojson").read_text())
    assert len(points["features"]) == 1
    lon, lat, alt = points["features"][0]["geometry"]["coordinates"]
    assert (lat, lon) == (pytest.approx(52.504306, abs=1e-6), pytest.approx(-13.400139, abs=1e-6))
    assert points["features"][0]["properties"]["worst_severity"] == "low"


def test_discover_reads_predict_summary(tmp_path):
    res = tmp_path / "pred"
    res.mkdir()
    photo = tmp_path / "p1.jpg"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(photo)
    cv2.imwrite(str(res / "p1_mask.png"), np.zeros((20, 30), np.uint8))
    summary = {"results": [{"file": str(photo), "mask": "elsewhere/p1_mask.png"},
                           {"file": "gone.jpg", "error": "gone.jpg: file not found"}]}
    (res / "summary.json").write_text(json.dumps(summary))
    items, problems = discover_items(res)
    assert [(i.name, i.mask, i.photo) for i in items] == [("p1", res / "p1_mask.png", photo)]
    assert problems == [("gone.jpg", "gone.jpg: file not found")]


def test_without_a_scale_the_report_says_pixels(tmp_path):
    res = tmp_path / "m"
    res.mkdir()
    cv2.imwrite(str(res / "x.png"), bar(200, 4, 0).astype(np.uint8) * 255)
    doc = build_survey(*[discover_items(res)[0], tmp_path / "o"], SurveyOptions(severity="concrete"))
    assert doc["summary"]["unit"] == "px" and doc["summary"]["severity_scheme"]["name"] == "pixels"
    assert "no pixel size" in doc["summary"]["severity_note"]
    text = (tmp_path / "o" / "report.html").read_text()
    assert "No pixel size given" in text and "no pixel size known" in text


@pytest.mark.parametrize("args,message", [
    (["--severity", "nope"], "built-in scheme"), (["--tolerance", "50"], "--tolerance"),
    (["--mm-per-px", "-1"], "--mm-per-px"), (["--ref-points", "1,2,3,4"], "go together"),
    (["--direction", "nan"], "--direction"), (["--min-length", "-1"], "--min-length"),
])
def test_report_cli_refuses_bad_options_in_one_line(tmp_path, capsys, args, message):
    res = tmp_path / "m"
    res.mkdir()
    cv2.imwrite(str(res / "x.png"), bar(200, 4, 0).astype(np.uint8) * 255)
    assert main(["report", str(res), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (res / "report").exists()


def test_report_cli_on_missing_or_empty_folders(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "no masks found" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--images", str(tmp_path / "photos")]) == 2
    assert "--images" in capsys.readouterr().err


def test_overlay_colours_cracks_by_severity(tmp_path):
    from cracksam.inspection.overlay import render_inspection, severity_colours

    mask = bar(200, 4, 0) | bar(200, 12, 0, centre=(200.3, 300.2))
    ins = inspect_mask(mask, severity="pixels")
    assert [g.label for g in ins.grades] == ["medium", "high"]
    pic = render_inspection(mask, ins, alpha=1.0)
    colours = severity_colours(3)
    assert tuple(pic[200, 120]) == colours[1] and tuple(pic[300, 120]) == colours[2]


def test_crack_rle_from_the_bounding_box_equals_pycocotools_on_the_whole_image():
    from cracksam.inspection.exports import _crack_rle

    rng = np.random.default_rng(1)
    for _ in range(300):  # random label images, cracks touching the first and last pixels included
        height, width = (int(v) for v in rng.integers(1, 25, 2))
        labels = rng.integers(0, 3, (height, width)).astype(np.int32)
        for crack_id in (1, 2):
            ys, xs = np.nonzero(labels == crack_id)
            if not len(ys):
                continue
            bbox = (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
            got = _crack_rle(labels, crack_id, bbox, pycocotools_mask)
            want = pycocotools_mask.encode(np.asfortranarray((labels == crack_id).astype(np.uint8)))
            assert got["counts"] == want["counts"] and list(got["size"]) == [height, width]
