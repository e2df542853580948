"""What ``predict`` writes for each photo, and the crack overlay: one function for each.

The plain predict loop and the survey engine write a photo's files through one function
(:func:`cracksam.survey.outputs.write_outputs`), so their files are the same bytes; every crack
overlay -- ``predict --overlay``, the survey, ``stream --out-video`` and the report's severity
picture -- is one blend (:func:`cracksam.inspection.overlay.blend`), with the crack colour and
opacity in one place (:data:`~cracksam.inspection.overlay.CRACK_RGB`, ``CRACK_ALPHA``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cracksam.cli.main import main
from cracksam.inspection import inspect_mask
from cracksam.inspection import overlay as overlay_module
from cracksam.inspection.overlay import CRACK_ALPHA, CRACK_RGB, crack_overlay, render_inspection

from ._models import DarknessModel

pytest.importorskip("pyarrow")

PER_PHOTO = ("_mask.png", "_overlay.png", "_prob.png", "_measure.json", "_cracks.csv", "_measure.png")


@pytest.fixture(scope="module")
def dark_onnx(tmp_path_factory) -> Path:
    """A fixed model (dark pixels are cracks): deterministic masks."""
    from cracksam.deployment.export import export_onnx

    return export_onnx(DarknessModel(64), tmp_path_factory.mktemp("model") / "dark.onnx")


def _photos(folder: Path, n: int = 3) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(120, 255, (40 + 12 * i, 72, 3), dtype=np.uint8)
        cv2.line(img, (0, 4 + 5 * i), (71, 30), (15, 25, 35), 2 + i)
        paths.append(folder / f"p{i}.png")
        cv2.imwrite(str(paths[-1]), img)
    return paths


def _predict(dark_onnx: Path, *args: str) -> int:
    return main(["predict", "--model", str(dark_onnx), "--no-progress", "--overlay", "--prob", "--measure", *args])


def test_plain_and_survey_predict_write_the_same_files(tmp_path, dark_onnx):
    photos = _photos(tmp_path / "photos")
    plain, survey = tmp_path / "plain", tmp_path / "survey"
    assert _predict(dark_onnx, str(tmp_path / "photos"), "--out", str(plain)) == 0
    assert _predict(dark_onnx, str(tmp_path / "photos"), "--out", str(survey), "--table") == 0
    for photo in photos:
        for suffix in PER_PHOTO:
            name = photo.stem + suffix
            assert (plain / name).read_bytes() == (survey / name).read_bytes(), name
        # The overlay is the one crack overlay of the photo and its mask.
        rgb = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
        mask = cv2.imread(str(plain / f"{photo.stem}_mask.png"), cv2.IMREAD_UNCHANGED) > 0
        drawn = cv2.cvtColor(cv2.imread(str(plain / f"{photo.stem}_overlay.png")), cv2.COLOR_BGR2RGB)
        assert mask.any() and np.array_equal(drawn, crack_overlay(rgb, mask)), photo.name


def test_both_loops_write_each_photo_through_write_outputs(tmp_path, dark_onnx, monkeypatch):
    import cracksam.survey.outputs as outputs

    real, seen = outputs.write_outputs, []

    def spy(image, pred, stem, opts, row, written):
        seen.append((Path(opts.out).name, stem))
        return real(image, pred, stem, opts, row, written)

    monkeypatch.setattr(outputs, "write_outputs", spy)
    _photos(tmp_path / "photos")
    assert _predict(dark_onnx, str(tmp_path / "photos"), "--out", str(tmp_path / "plain")) == 0
    assert _predict(dark_onnx, str(tmp_path / "photos"), "--out", str(tmp_path / "survey"), "--table") == 0
    stems = ["p0", "p1", "p2"]
    assert sorted(s for o, s in seen if o == "plain") == stems
    assert sorted(s for o, s in seen if o == "survey") == stems


def test_every_crack_overlay_is_the_one_blend(monkeypatch):
    from cracksam.deployment.stream import annotate

    rng = np.random.default_rng(1)
    frame_bgr = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    mask = np.zeros((30, 40), bool)
    mask[10:14, 3:35] = True
    # stream draws the video frame (BGR) as predict --overlay draws the photo (RGB)
    rgb = frame_bgr[..., ::-1]
    assert np.array_equal(annotate(frame_bgr, mask)[..., ::-1], crack_overlay(rgb, mask))
    assert not np.array_equal(crack_overlay(rgb, mask), rgb) and np.array_equal(crack_overlay(rgb, mask)[~mask],
                                                                                rgb[~mask])

    real, calls = overlay_module.blend, []

    def spy(image, where, colour, alpha):
        calls.append((np.asarray(colour).shape, alpha))
        return real(image, where, colour, alpha)

    monkeypatch.setattr(overlay_module, "blend", spy)
    crack_overlay(rgb, mask)
    annotate(frame_bgr, mask)
    assert calls == [((3,), CRACK_ALPHA)] * 2
    calls.clear()
    render_inspection(rgb, inspect_mask(mask, min_length_px=2))  # the report: one colour per crack pixel
    assert calls == [((int(mask.sum()), 3), 0.65)]


def test_the_crack_colour_is_red_in_both_channel_orders():
    one = np.zeros((1, 1, 3), np.uint8)
    on = np.ones((1, 1), bool)
    expected = (np.array(CRACK_RGB, np.float32) * CRACK_ALPHA).astype(np.uint8)
    assert np.array_equal(crack_overlay(one, on)[0, 0], expected)
    assert np.array_equal(crack_overlay(one, on, bgr=True)[0, 0], expected[::-1])
