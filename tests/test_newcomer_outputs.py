"""Issue 12 point 11: outputs that look right -- a readable measure legend clear of the crack circles,
a colour key on evaluate overlays, heat-maps of probability, the learning rate in scientific notation,
plain progress lines with --no-progress (training and the teacher pass), no Lightning chatter."""

from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest

from cracksam.cli.main import main
from cracksam.data import load_split
from cracksam.data.synthetic import make_dataset
from cracksam.measurement import measure_mask, render_annotation
from cracksam.measurement.render import legend_box


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


def test_evaluate_overlays_carry_a_colour_key():
    from cracksam.evaluation.visualize import FN_COLOUR, FP_COLOUR, TP_COLOUR, TRUTH_COLOUR, comparison_panel

    image = np.full((40, 50, 3), 128, np.uint8)
    truth = np.zeros((40, 50), bool)
    pred = np.zeros((40, 50), bool)
    panel = comparison_panel(image, truth, pred)  # no crack at all: every colour is the key's
    assert panel.shape[0] > 40 and panel.shape[1] == 3 * 50 + 8
    key = panel[40:]
    for colour in (TRUTH_COLOUR, TP_COLOUR, FP_COLOUR, FN_COLOUR):
        assert (key == np.array(colour, np.uint8)).all(axis=2).sum() > 20, colour


def test_heatmaps_show_probability_on_a_fixed_scale(tmp_path, monkeypatch):
    from cracksam.evaluation import visualize
    from cracksam.inference.predictor import Prediction

    prob = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    seen = {}

    def spy(image, values, title=""):
        seen["values"] = values
        fig = visualize.heatmap_figure(image, values, title)
        seen["clim"] = fig.axes[1].images[0].get_clim()
        seen["title"] = fig.axes[1].get_title()
        return b"png"

    monkeypatch.setattr(visualize, "heatmap_png", spy)
    pred = Prediction(prob=prob, crack_logit=(prob - 0.5) * 40)
    visualize.save_visuals(tmp_path, "x", np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), np.uint8), pred, 0.5)
    assert seen["values"] is prob and seen["clim"] == (0.0, 1.0) and seen["title"] == "crack probability"


def test_learning_rate_shown_in_scientific_notation(monkeypatch):
    from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar

    from cracksam.training.progress import CrackProgressBar, format_lr

    assert format_lr(4e-4) == "4.00e-04"
    monkeypatch.setattr(ProgressBar, "get_metrics", lambda self, trainer, module: {"lr": 0.0004, "v_num": 0})
    assert CrackProgressBar().get_metrics(None, None) == {"lr": "4.00e-04"}


def test_no_progress_prints_periodic_lines_and_no_lightning_chatter(tmp_path, capfd):
    data = make_dataset(tmp_path / "d", n=8, size=(64, 64))
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--backbone", "tiny", "--image-size", "64", "--delta", "lora",
            "--max-iters", "4", "--batch-size", "2", "--workers", "0", "-o", str(out), "--no-progress"]
    assert main(argv) == 0
    captured = capfd.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("step ")]
    assert [line.split(",")[0].split()[1] for line in lines] == ["1/4", "2/4", "3/4", "4/4"]
    assert all(" lr " in line and "e-" in line or "e+00" in line for line in lines)
    assert "validation at step 4: IoU" in captured.err
    for chatter in ("Tip", "GPU available", "TPU available", "LeafSpec", "deprecated", "litlogger"):
        assert chatter not in captured.err + captured.out, chatter
    assert json.loads(captured.out[captured.out.rindex('{\n  "run"'):])["steps"] == 4


def test_the_teacher_pass_reports_progress_off_a_terminal(tmp_path):
    from cracksam.training.teacher import TeacherCache, fill_cache

    class Teacher:
        name, precision, image_size = "t", "fp32", 64

        def run(self, x):
            return np.zeros((x.shape[0], 2, 64, 64), np.float32)

    samples = load_split(make_dataset(tmp_path / "d", n=20, size=(64, 64)), "all")
    stream = io.StringIO()  # not a terminal, like a log file
    assert fill_cache(TeacherCache(tmp_path / "c", "t", 64), Teacher(), samples, batch_size=2, stream=stream) == 20
    lines = stream.getvalue().splitlines()
    assert lines[0] == "teacher logits: 20 image(s) to compute"
    assert lines[-1].startswith("teacher logits: 20/20") and len(lines) >= 6


@pytest.mark.parametrize("name", ["", "Intel(R) Xeon(R)"])
def test_bench_title_has_no_trailing_separator(monkeypatch, name):
    from cracksam.cli import bench

    monkeypatch.setattr(bench.platform, "processor", lambda: name)
    title = bench._machine(2)
    assert title == "threads 2" + (f", {name}" if name else "") and not title.endswith((",", ", "))
