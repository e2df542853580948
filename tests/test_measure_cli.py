"""The ``cracksam measure`` command: reports, the table, folders and globs, scales and refused options
on drawn masks; on a ``predict`` folder it measures only the masks, refuses photos and probability
maps unless ``--threshold`` is given, and writes the report names ``predict --measure`` writes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from cracksam.cli.main import main
from cracksam.measurement import read_binary_mask
from cracksam.measurement.measure import MeasurementError

from .test_measure import _two_crack_mask

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "images" / "cracksc_301.jpg"


# --- measure on a predict folder -------------------------------------------------------------


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    """A real predict output folder: masks, overlays, probability maps, measurements, summary."""
    out = tmp_path_factory.mktemp("pred") / "p"
    argv = ["predict", str(EXAMPLE), "--overlay", "--prob", "--measure", "--out", str(out), "--no-progress",
            "--threads", "1"]
    assert main(argv) == 0
    return out


def test_measure_on_a_predict_folder_measures_only_the_masks(predicted, tmp_path, capsys):
    capsys.readouterr()
    assert {p.name for p in predicted.glob("*.png")} >= {"cracksc_301_mask.png", "cracksc_301_overlay.png",
                                                         "cracksc_301_prob.png", "cracksc_301_measure.png"}
    out = tmp_path / "m"
    assert main(["measure", str(predicted), "--json", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    reports = json.loads(captured.out)
    assert [Path(r["image"]).name for r in reports] == ["cracksc_301_mask.png"]
    assert "other image(s) skipped" in captured.err
    # Same numbers as predict's own measurement of that mask.
    mine = json.loads((predicted / "cracksc_301_measure.json").read_text())["totals"]
    assert reports[0]["totals"]["n_cracks"] == mine["n_cracks"]
    assert reports[0]["totals"]["total_length_px"] == pytest.approx(mine["total_length_px"], rel=1e-6)
    # One report name for both commands: <stem>_measure.json.
    assert (out / "cracksc_301_mask_measure.json").is_file() and not (out / "cracksc_301_mask.json").exists()


def test_a_photo_or_probability_map_is_refused_unless_a_threshold_is_given(predicted, capsys):
    capsys.readouterr()
    for name in ("cracksc_301_overlay.png", "cracksc_301_prob.png"):
        assert main(["measure", str(predicted / name)]) == 1
        err = capsys.readouterr().err
        assert "not a binary mask" in err and "--threshold" in err and "Traceback" not in err
    assert main(["measure", str(EXAMPLE)]) == 1
    assert "not a binary mask" in capsys.readouterr().err
    # With --threshold the probability map gives the same mask predict wrote (threshold 0.5).
    prob = predicted / "cracksc_301_prob.png"
    mask = read_binary_mask(predicted / "cracksc_301_mask.png")
    from_prob = read_binary_mask(prob, threshold=0.5)
    assert (from_prob != mask).mean() < 1e-3
    assert main(["measure", str(prob), "--threshold", "0.5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["n_cracks"] >= 1
    assert main(["measure", str(prob), "--threshold", "128"]) == 2
    assert "(0, 1)" in capsys.readouterr().err


def test_binary_masks_of_any_encoding_still_pass(tmp_path):
    mask = np.zeros((20, 30), np.uint8)
    mask[5:8] = 255
    colour = np.zeros((20, 30, 3), np.uint8)
    colour[..., 2] = mask
    for name, array in (("a.png", mask), ("b.png", mask // 255), ("c.png", colour)):
        cv2.imwrite(str(tmp_path / name), array)
        np.testing.assert_array_equal(read_binary_mask(tmp_path / name), mask > 0)
    grey = mask.copy()
    grey[10, 10] = 40  # a third level: anti-aliasing, a JPEG mask, a photo
    cv2.imwrite(str(tmp_path / "d.png"), grey)
    with pytest.raises(MeasurementError, match="not a binary mask"):
        read_binary_mask(tmp_path / "d.png")
    assert read_binary_mask(tmp_path / "d.png", threshold=0.1)[10, 10]
    assert not read_binary_mask(tmp_path / "d.png", threshold=0.5)[10, 10]


# --- the measure command on masks of known geometry -------------------------------------------


def _cli(args: list[str]) -> int:
    from cracksam.cli.main import main

    return main(args)


def test_cli_writes_reports(tmp_path, capsys) -> None:
    mask_path = tmp_path / "slab.png"
    cv2.imwrite(str(mask_path), _two_crack_mask())
    out = tmp_path / "out"
    rc = _cli(["measure", str(mask_path), "--mm-per-px", "0.1", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    report = json.loads(captured.out)  # --json: stdout holds only the JSON, the table goes to stderr
    assert report["mm_per_px"] == 0.1 and "0.1 mm" in report["resolution_note"]
    assert report["totals"]["n_cracks"] == 2
    assert report["cracks"][0]["length_mm"] == pytest.approx(report["cracks"][0]["length_px"] * 0.1, rel=1e-3)
    for name in ("slab_measure.json", "slab_cracks.csv", "slab_measure.png", "summary.csv"):
        assert (out / name).is_file(), name
    assert json.loads((out / "slab_measure.json").read_text())["totals"] == report["totals"]
    assert len(list(csv.DictReader((out / "slab_cracks.csv").open()))) == 2
    summary = list(csv.DictReader((out / "summary.csv").open()))
    assert len(summary) == 1 and summary[0]["n_cracks"] == "2" and summary[0]["error"] == ""
    picture = cv2.imread(str(out / "slab_measure.png"))
    assert picture.shape == (120, 160, 3)
    assert "Crack measurement" in captured.err


def test_cli_table_folder_glob_and_reference_scale(tmp_path, capsys) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    cv2.imwrite(str(masks / "a.png"), _two_crack_mask())
    cv2.imwrite(str(masks / "b.png"), np.zeros((50, 60), np.uint8))
    out = tmp_path / "out"
    rc = _cli(["measure", str(masks), "--ref-points", "0,0,30,40", "--ref-length-mm", "10", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "a.png" in captured.out and "b.png" in captured.out  # rich table on stdout
    summary = list(csv.DictReader((out / "summary.csv").open()))
    assert [row["n_cracks"] for row in summary] == ["2", "0"]
    assert float(summary[0]["mm_per_px"]) == pytest.approx(0.2)
    rc = _cli(["measure", str(masks / "*.png"), "--json"])
    reports = json.loads(capsys.readouterr().out)
    assert rc == 0 and [r["totals"]["n_cracks"] for r in reports] == [2, 0]
    assert reports[0]["mm_per_px"] is None


def test_cli_draws_on_image(tmp_path, capsys) -> None:
    mask_path, photo_path = tmp_path / "m.png", tmp_path / "photo.jpg"
    cv2.imwrite(str(mask_path), _two_crack_mask())
    cv2.imwrite(str(photo_path), np.full((120, 160, 3), 128, np.uint8))
    assert _cli(["measure", str(mask_path), "--image", str(photo_path), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "m_measure.png").is_file()
    cv2.imwrite(str(photo_path), np.full((100, 160, 3), 128, np.uint8))
    rc = _cli(["measure", str(mask_path), "--image", str(photo_path)])
    assert rc == 2 and "photo.jpg" in capsys.readouterr().err


def test_cli_bad_file_is_named_and_skipped(tmp_path, capsys) -> None:
    good, bad, empty = tmp_path / "good.png", tmp_path / "notes.png", tmp_path / "blank.png"
    cv2.imwrite(str(good), _two_crack_mask())
    bad.write_text("this is not an image")
    empty.write_bytes(b"")
    out = tmp_path / "out"
    rc = _cli(["measure", str(good), str(bad), str(empty), str(tmp_path / "gone.png"), "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 1
    assert "notes.png" in captured.err and "not a readable image" in captured.err
    assert "blank.png" in captured.err and "gone.png" in captured.err
    assert (out / "good_measure.json").is_file() and not (out / "notes_measure.json").exists()
    summary = {Path(row["image"]).name: row for row in csv.DictReader((out / "summary.csv").open())}
    assert summary["good.png"]["error"] == "" and summary["notes.png"]["error"]


def test_cli_option_errors(tmp_path, capsys) -> None:
    mask_path = tmp_path / "m.png"
    cv2.imwrite(str(mask_path), _two_crack_mask())
    cases = [
        (["--mm-per-px", "0.1", "--ref-points", "0,0,10,0", "--ref-length-mm", "5"], "mutually exclusive"),
        (["--ref-points", "0,0,10,0"], "--ref-length-mm"),
        (["--ref-points", "1,2,3", "--ref-length-mm", "5"], "four numbers"),
        (["--ref-points", "4,4,4,4", "--ref-length-mm", "5"], "coincide"),
        (["--mm-per-px", "-0.5"], "positive"),
        (["--min-length", "-1"], "min-length"),
    ]
    for extra, message in cases:
        rc = _cli(["measure", str(mask_path), *extra])
        err = capsys.readouterr().err
        assert rc == 2, extra
        assert message in err, (extra, err)
    rc = _cli(["measure", str(mask_path), str(mask_path), "--image", str(mask_path)])
    assert rc == 2 and "--image" in capsys.readouterr().err
