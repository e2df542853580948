"""Issue 12 point 8 (and the file names of 14): ``measure`` on a ``predict`` folder measures only
the masks, refuses photos and probability maps unless ``--threshold`` is given, and writes the
report names ``predict --measure`` writes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from cracksam.cli.main import main
from cracksam.measurement import read_mask
from cracksam.measurement.measure import MeasurementError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "images" / "cracksc_301.jpg"


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
    mask = read_mask(predicted / "cracksc_301_mask.png")
    from_prob = read_mask(prob, threshold=0.5)
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
        np.testing.assert_array_equal(read_mask(tmp_path / name), mask > 0)
    grey = mask.copy()
    grey[10, 10] = 40  # a third level: anti-aliasing, a JPEG mask, a photo
    cv2.imwrite(str(tmp_path / "d.png"), grey)
    with pytest.raises(MeasurementError, match="not a binary mask"):
        read_mask(tmp_path / "d.png")
    assert read_mask(tmp_path / "d.png", threshold=0.1)[10, 10]
    assert not read_mask(tmp_path / "d.png", threshold=0.5)[10, 10]
