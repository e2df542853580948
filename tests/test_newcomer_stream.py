"""Issue 12 point 12: a scene change with ``--every N`` gets its own mask at once, ``.mp4`` output is
H.264 where OpenCV has it (else a warning says so), and ``stream file.mp4`` alone is a statistics run."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from cracksam.cli.main import main
from cracksam.deployment import stream as stream_mod
from cracksam.deployment import video as video_mod
from cracksam.deployment.stream import StreamOptions, codec_available, run_stream, scene_change, scene_signature

from ._models import DarknessModel

W, H = 96, 64


def _scene(kind: str, i: int) -> np.ndarray:
    """Scene A: light road, dark crack along the top; scene B: a darker road, crack along the bottom."""
    rng = np.random.default_rng(i)
    if kind == "A":
        f = np.full((H, W, 3), 200, np.uint8)
        cv2.line(f, (0, 10), (W - 1, 10), (15, 15, 15), 3)
    else:
        f = np.full((H, W, 3), 140, np.uint8)
        cv2.line(f, (0, 52), (W - 1, 52), (15, 15, 15), 3)
    noise = rng.integers(-3, 4, f.shape)
    return np.clip(f.astype(int) + noise, 0, 255).astype(np.uint8)


def _video(path: Path, kinds: str) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for i, kind in enumerate(kinds):
        writer.write(_scene(kind, i))
    writer.release()
    return path


@pytest.fixture(scope="module")
def dark_onnx(tmp_path_factory) -> Path:
    from cracksam.deployment.export import export_onnx

    return export_onnx(DarknessModel(64), tmp_path_factory.mktemp("cut") / "dark.onnx")


def test_scene_change_scores_cuts_high_and_noise_low():
    a0, a1, b = (scene_signature(_scene(k, i)) for k, i in (("A", 0), ("A", 1), ("B", 2)))
    assert scene_change(a0, a1) < 0.05
    assert scene_change(a0, b) > 0.5
    # Same grey levels, another view (a half-shaded road, mirrored): the thumbnail difference sees it.
    shaded = np.full((H, W, 3), 200, np.uint8)
    shaded[:, : W // 2] = 60
    left, right = scene_signature(shaded), scene_signature(np.ascontiguousarray(shaded[:, ::-1]))
    assert float(np.abs(left[1] - right[1]).max()) < 1e-6  # identical histograms
    assert scene_change(left, right) > stream_mod.DEFAULT_SCENE_CUT


def test_after_a_cut_the_old_mask_is_not_drawn_over_the_new_scene(tmp_path, dark_onnx):
    from cracksam.inference.predictor import Predictor

    video = _video(tmp_path / "cut.avi", "AAAAABBBBB")  # cut between frames 4 and 5
    predictor = Predictor.from_path(dark_onnx)
    frames = tmp_path / "frames"
    stats = run_stream(predictor, str(video), StreamOptions(every=3, frames_dir=frames))
    segmented = sorted(int(p.name[6:12]) for p in frames.glob("*_mask.png"))
    assert segmented == [0, 3, 5, 6, 9] and stats.scene_cuts == 1
    mask = cv2.imread(str(frames / "frame_000005_mask.png"), cv2.IMREAD_GRAYSCALE)
    rows = np.flatnonzero((mask > 0).sum(axis=1) > W // 2)
    assert rows.size and abs(rows.mean() - 52) <= 2  # scene B's crack, not scene A's
    # Switched off, frame 5 reuses frame 3's mask (the bug the detection fixes).
    off = tmp_path / "off"
    run_stream(predictor, str(video), StreamOptions(every=3, frames_dir=off, scene_cut=None))
    assert sorted(int(p.name[6:12]) for p in off.glob("*_mask.png")) == [0, 3, 6, 9]


def test_the_cli_default_matches_the_library_and_zero_turns_it_off(tmp_path, dark_onnx, capsys):
    from cracksam.cli import stream as cli_stream

    assert cli_stream.DEFAULT_SCENE_CUT == stream_mod.DEFAULT_SCENE_CUT
    video = _video(tmp_path / "cut.avi", "AAAAABBBBB")
    base = ["stream", str(video), "-m", str(dark_onnx), "--every", "3", "--json", "--no-progress"]
    assert main(base) == 0
    assert json.loads(capsys.readouterr().out)["scene_cuts"] == 1
    assert main([*base, "--scene-cut", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["scene_cuts"] == 0
    assert main([*base, "--scene-cut", "2"]) == 2
    assert "--scene-cut" in capsys.readouterr().err


def test_stream_without_outputs_is_a_statistics_run(tmp_path, dark_onnx, capsys):
    video = _video(tmp_path / "in.avi", "AAAAAA")
    assert main(["stream", str(video), "-m", str(dark_onnx), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "statistics only" in captured.err and "6 frames read, 6 segmented" in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.avi"]  # nothing written


def test_mp4_is_h264_where_opencv_has_it_else_a_warning_says_so(tmp_path, dark_onnx, monkeypatch):
    from cracksam.inference.predictor import Predictor

    video = _video(tmp_path / "in.avi", "AAA")
    predictor = Predictor.from_path(dark_onnx)
    has_h264 = codec_available("avc1", ".mp4")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stats = run_stream(predictor, str(video), StreamOptions(out_video=tmp_path / "a.mp4"))
    assert stats.codec == ("avc1" if has_h264 else "mp4v")
    assert any("H.264" in str(w.message) for w in caught) == (not has_h264)
    # Both branches, whatever this OpenCV has.
    monkeypatch.setattr(video_mod, "codec_available", lambda fourcc, suffix=".mp4": False)
    with pytest.warns(UserWarning, match="no H.264"):
        assert video_mod.default_codec(".mp4") == "mp4v"
    monkeypatch.setattr(video_mod, "codec_available", lambda fourcc, suffix=".mp4": True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert video_mod.default_codec(".mp4") == "avc1"
    assert video_mod.default_codec(".avi") == "MJPG"
