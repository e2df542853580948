"""``cracksam stream``: video files, MJPEG over HTTP, broken and missing sources; a scene change with
``--every N`` gets its own mask at once, ``.mp4`` output is H.264 where OpenCV has it (else a warning
says so), and ``stream file.mp4`` alone is a statistics run."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from cracksam.cli.main import main
from cracksam.deployment import stream as stream_mod
from cracksam.deployment import video as video_mod
from cracksam.deployment.stream import (
    StreamError,
    StreamOptions,
    codec_available,
    run_stream,
    scene_change,
    scene_signature,
)
from cracksam.inference.predictor import Predictor

from ._models import DarknessModel

W, H, N = 96, 64, 12


def line_y(i: int) -> int:
    """Row of the dark line in frame ``i``: it moves 4 px per frame, so reused masks show."""
    return 8 + 4 * i


def frame(i: int) -> np.ndarray:
    f = np.full((H, W, 3), 200, np.uint8)
    cv2.line(f, (0, line_y(i)), (W - 1, line_y(i)), (15, 15, 15), 3)
    return f


def write_video(path: Path, fourcc: str = "mp4v", n: int = N) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (W, H))
    assert writer.isOpened()
    for i in range(n):
        writer.write(frame(i))
    writer.release()
    return path


def read_video(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def red_rows(f: np.ndarray) -> np.ndarray:
    """Rows where the annotation painted crack pixels red."""
    b, g, r = (f[:, :, c].astype(int) for c in range(3))
    return np.flatnonzero(((r > 110) & (r - g > 60) & (r - b > 60)).sum(axis=1) > W // 2)


@pytest.fixture(scope="module")
def dark_onnx(tmp_path_factory) -> Path:
    """Dark pixels are cracks: masks follow the moving line (an ONNX file, as users would give)."""
    from cracksam.deployment.export import export_onnx

    return export_onnx(DarknessModel(64), tmp_path_factory.mktemp("stream") / "dark.onnx")


def test_stream_a_video_file(tmp_path, dark_onnx, capsys):
    video = write_video(tmp_path / "in.mp4")
    out, frames_dir = tmp_path / "out" / "annotated.mp4", tmp_path / "frames"
    rc = main(["stream", str(video), "--model", str(dark_onnx), "--every", "3", "--out-video", str(out),
               "--frames-dir", str(frames_dir), "--no-progress", "--json"])
    assert rc == 0, capsys.readouterr().err
    frames = read_video(out)
    assert len(frames) == N and frames[0].shape == (H, W, 3)
    assert sorted(p.name for p in frames_dir.iterdir()) == [
        f"frame_{i:06d}{suffix}" for i in (0, 3, 6, 9) for suffix in (".jpg", "_mask.png")]
    for i in (0, 3, 6, 9):
        mask = cv2.imread(str(frames_dir / f"frame_{i:06d}_mask.png"), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (H, W) and set(np.unique(mask)) <= {0, 255}
        rows = np.flatnonzero((mask > 0).sum(axis=1) > W // 2)
        assert rows.size and abs(rows.mean() - line_y(i)) <= 1.5, (i, rows)
    for i, f in enumerate(frames):  # frames between segmentations carry the last segmented frame's mask
        rows = red_rows(f)
        assert rows.size and abs(rows.mean() - line_y(i - i % 3)) <= 2, (i, rows)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # the temporary file was renamed
    stats = json.loads(capsys.readouterr().out)
    assert (stats["frames_read"], stats["frames_segmented"], stats["frames_written"]) == (N, 4, N)
    assert stats["ended"] == "end" and stats["fps"] > 0


def test_avi_output_and_max_frames(tmp_path, dark_onnx):
    video = write_video(tmp_path / "in.avi", "MJPG")
    out = tmp_path / "out.avi"
    assert main(["stream", str(video), "--model", str(dark_onnx), "--out-video", str(out), "--max-frames", "5",
                 "--no-progress"]) == 0
    assert len(read_video(out)) == 5


def test_bad_sources_are_clear_errors(tmp_path, dark_onnx, capsys):
    out = tmp_path / "out.mp4"
    base = ["--model", str(dark_onnx), "--out-video", str(out), "--no-progress"]
    cases = [
        ([str(tmp_path / "missing.mp4")], "file not found"),
        ([str(tmp_path)], "not a file"),
        ([str(tmp_path / "notes.txt")], "cannot open"),
        (["97"], "camera 97"),
        (["http://127.0.0.1:9/none.mjpg", "--timeout", "2"], "cannot open"),
    ]
    (tmp_path / "notes.txt").write_text("not a video")
    for args, needle in cases:
        assert main(["stream", *args, *base]) == 2, args
        err = capsys.readouterr().err
        assert "error:" in err and needle in err and "Traceback" not in err, (args, err)
    assert not out.exists()
    video = write_video(tmp_path / "in.mp4")
    assert main(["stream", str(video), *base, "--every", "0"]) == 2
    assert "--every" in capsys.readouterr().err


def test_a_truncated_video_is_an_error_but_the_output_is_kept(tmp_path, dark_onnx, capsys):
    good = write_video(tmp_path / "in.avi", "MJPG")
    data = good.read_bytes()
    broken = tmp_path / "broken.avi"
    broken.write_bytes(data[: int(len(data) * 0.6)])
    out = tmp_path / "out.mp4"
    rc = main(["stream", str(broken), "--model", str(dark_onnx), "--out-video", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "error:" in err and "broke after" in err and "Traceback" not in err
    kept = read_video(out)
    assert 0 < len(kept) < N  # the frames before the break, in a finished file


def test_interrupt_finalises_the_video(tmp_path, dark_onnx):
    video = write_video(tmp_path / "in.mp4")
    out = tmp_path / "out.mp4"
    predictor = Predictor.from_path(dark_onnx)

    def ctrl_c_after_5(stats, _total) -> None:
        if stats.frames_read == 5:
            raise KeyboardInterrupt

    stats = run_stream(predictor, str(video), StreamOptions(out_video=out), on_frame=ctrl_c_after_5)
    assert stats.ended == "interrupted" and stats.frames_written == 5
    assert len(read_video(out)) == 5
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"RIFF\0\0\0\0AVI ")
    with pytest.raises(StreamError, match="cannot open|no frame"):
        run_stream(predictor, str(empty), StreamOptions(out_video=tmp_path / "o2.mp4"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.avi", "in.mp4", "out.mp4"]  # no partial files


# -- MJPEG over HTTP ---------------------------------------------------------------------------------


class MjpegServer:
    """``multipart/x-mixed-replace`` JPEG frames, as IP cameras serve them, on a loopback port."""

    def __init__(self, frames: int) -> None:
        count = frames

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                for i in range(count):
                    ok, jpg = cv2.imencode(".jpg", frame(i % N))
                    part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
                    try:
                        self.wfile.write(part + jpg.tobytes() + b"\r\n")
                        self.wfile.flush()
                    except OSError:  # the client has what it wanted and hung up
                        return
                    time.sleep(0.005)

            def log_message(self, *args) -> None:
                pass

        self.httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/video.mjpg"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> MjpegServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_mjpeg_over_http(tmp_path, dark_onnx, capsys):
    out = tmp_path / "live.avi"
    with MjpegServer(frames=200) as server:
        rc = main(["stream", server.url, "--model", str(dark_onnx), "--every", "2", "--max-frames", "8",
                   "--out-video", str(out), "--fps", "5", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    frames = read_video(out)
    assert len(frames) == 8 and red_rows(frames[0]).size

    # A live stream that stops is a broken source: an error, with what was received kept.
    cut = tmp_path / "cut.avi"
    with MjpegServer(frames=3) as server:
        rc = main(["stream", server.url, "--model", str(dark_onnx), "--out-video", str(cut), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "stopped after 3 frames" in err and "Traceback" not in err
    assert len(read_video(cut)) == 3


def test_a_missing_or_unreadable_video_fails_before_the_model_loads(tmp_path, monkeypatch, capsys):
    from .test_predict import _no_model

    _no_model(monkeypatch)
    (tmp_path / "notes.txt").write_text("not a video")
    out, frames = tmp_path / "out.mp4", tmp_path / "frames"
    for source, needle in [(tmp_path / "missing.mp4", "missing.mp4: file not found"),
                           (tmp_path / "notes.txt", "cannot open"), (tmp_path, "not a file")]:
        assert main(["stream", str(source), "--out-video", str(out), "--frames-dir", str(frames),
                     "--no-progress"]) == 2, source
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], lines
    assert not out.exists() and not frames.exists()


# --- scene changes with --every N, the .mp4 codec, a statistics-only run --------------------------


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
