"""Segmenting video: a file, an HTTP MJPEG stream or a camera, frame by frame.

:func:`run_stream` reads frames with OpenCV's ``VideoCapture``, segments every ``every``-th frame
with a :class:`~cracksam.inference.predictor.Predictor` (the frames in between reuse the last
mask, so the annotated video keeps the input's frame count and timing), and writes

* an annotated video (``out_video``): each frame with its mask drawn as ``predict --overlay`` draws
  it (:func:`~cracksam.inspection.overlay.crack_overlay`), written under a temporary name beside
  the target and renamed when it is complete, so the target is never a half-written file -- also
  after Ctrl-C or a broken stream, where the frames so far are kept;
* per segmented frame (``frames_dir``): ``frame_NNNNNN.jpg`` (the frame as read) and
  ``frame_NNNNNN_mask.png`` (0/255, the frame's size).

How a stream ends:

* a **video file** ends at its last frame; if it stops well short of the frame count in its
  header, the file is truncated or corrupt and :class:`StreamError` says so (after the outputs
  are finalised);
* a **live source** (camera, URL) has no end: a read that fails is a lost device or connection,
  also a :class:`StreamError` with the outputs finalised;
* ``max_frames`` or Ctrl-C (``KeyboardInterrupt``) end it cleanly.

With ``every`` > 1 a **scene change** (a cut, or the camera turning away) is segmented at once
instead of carrying the previous scene's mask over it: each frame's small grey thumbnail is compared
with the last segmented frame's (see :func:`scene_change`).  Without any output the stream is read
and segmented for its statistics only (throughput, segmentation time).

``.mp4`` output is H.264 (``avc1``, plays in browsers) where this OpenCV build can encode it; pip's
``opencv-python`` cannot, so it falls back to MPEG-4 Part 2 (``mp4v``) and warns.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from cracksam._files import encode_mask_png
from cracksam.config import atomic_write_bytes
from cracksam.deployment.stream_options import StreamOptions
from cracksam.deployment.video import (  # noqa: F401 - CODEC_BY_SUFFIX, codec_available: public names here too
    CODEC_BY_SUFFIX,
    DEFAULT_SCENE_CUT,
    codec_available,
    default_codec,
    scene_change,
    scene_signature,
)
from cracksam.errors import CrackSAMError
from cracksam.inference.predictor import Predictor
from cracksam.inspection.overlay import crack_overlay

DEFAULT_FPS = 25.0


class StreamError(CrackSAMError):
    """A video source cannot be opened or broke, or an output cannot be written."""


@dataclass
class StreamStats:
    source: str
    frames_read: int = 0
    frames_segmented: int = 0
    frames_written: int = 0
    scene_cuts: int = 0  # frames segmented early (with every > 1) because the scene changed
    codec: str | None = None  # FourCC of the video written
    seconds: float = 0.0
    fps: float = 0.0  # frames read per second, all work included
    segment_ms: float = 0.0  # mean time of one segmentation
    ended: Literal["end", "max-frames", "interrupted", "error"] = "end"
    out_video: str | None = None
    frames_dir: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the source -------------------------------------------------------------------------------


def is_live(source: str) -> bool:
    """Cameras (an all-digit index) and URLs have no natural end; files do."""
    return source.isdigit() or "://" in source


def _check_file(source: str) -> None:
    if "://" not in source:
        path = Path(source)
        if not path.exists():
            raise StreamError(f"{source}: file not found")
        if not path.is_file():
            raise StreamError(f"{source}: not a file")


def check_source(source: str) -> None:
    """Raise :class:`StreamError` for a video file that is missing, not a file or not a video, before
    anything slow (loading the model) runs; live sources (cameras, URLs) are checked when opened."""
    if not is_live(source):
        open_capture(source).release()


def open_capture(source: str, timeout_s: float = 10.0) -> cv2.VideoCapture:
    """``VideoCapture`` for a file, a URL (e.g. ``http://host/stream.mjpg``) or a camera index.

    Raises :class:`StreamError` when it cannot be opened, naming the source."""
    timeout_ms = int(timeout_s * 1000)
    if source.isdigit():
        cap = cv2.VideoCapture(int(source))
        what = f"camera {source}"
    else:
        _check_file(source)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
        cap = cv2.VideoCapture(source, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():  # not every build has FFmpeg for every source: let OpenCV pick
            cap = cv2.VideoCapture(source)
        what = source
    if not cap.isOpened():
        cap.release()
        raise StreamError(f"{what}: cannot open the video source (not a video, unreachable or no such device)")
    return cap


def _frame_count(cap: cv2.VideoCapture) -> int | None:
    """The frame count in a file's header; None when unknown (streams report 0 or nonsense)."""
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(count) if math.isfinite(count) and 0 < count < 1e9 else None


def _source_fps(cap: cv2.VideoCapture) -> float | None:
    fps = cap.get(cv2.CAP_PROP_FPS)
    return float(fps) if math.isfinite(fps) and 0.5 <= fps <= 1000 else None


# -- the outputs ------------------------------------------------------------------------------


def annotate(frame_bgr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The frame (BGR) with its crack pixels drawn as ``predict --overlay`` draws them."""
    return crack_overlay(frame_bgr, mask, bgr=True)


# -- the video writer -------------------------------------------------------------------------


class _VideoOut:
    """A ``VideoWriter`` on a hidden temporary file beside ``path``; :meth:`finish` renames it."""

    def __init__(self, path: Path, codec: str | None, fps: float, size: tuple[int, int]) -> None:
        self.path = path
        fourcc = codec or default_codec(path.suffix)
        if fourcc is None:
            raise StreamError(f"{path}: unknown video type {path.suffix!r}; use .mp4 or .avi, or give --codec")
        path.parent.mkdir(parents=True, exist_ok=True)
        # OpenCV picks the container from the extension, so the temporary name keeps it.
        self.tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.partial{path.suffix}")
        self.size = size
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter.fourcc(*fourcc), fps, size)
        if not self.writer.isOpened():
            self.writer.release()
            self.tmp.unlink(missing_ok=True)
            raise StreamError(f"{path}: cannot write a video with codec {fourcc!r} (not available in this OpenCV)")
        self.fourcc = fourcc
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        if (frame.shape[1], frame.shape[0]) != self.size:  # a stream that changes size mid-way
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(frame)
        self.frames += 1

    def finish(self) -> None:
        self.writer.release()
        if self.frames == 0:
            self.tmp.unlink(missing_ok=True)
            return
        os.replace(self.tmp, self.path)

    def abandon(self) -> None:
        self.writer.release()
        self.tmp.unlink(missing_ok=True)


def _write_frame_files(folder: Path, index: int, frame: np.ndarray, mask: np.ndarray) -> None:
    ok_img, jpg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok_img:  # pragma: no cover - OpenCV cannot fail on plain uint8 arrays
        raise StreamError(f"{folder}: cannot encode frame {index}")
    atomic_write_bytes(folder / f"frame_{index:06d}.jpg", jpg.tobytes())
    atomic_write_bytes(folder / f"frame_{index:06d}_mask.png", encode_mask_png(mask))


# -- the loop ---------------------------------------------------------------------------------


def run_stream(
    predictor: Predictor,
    source: str,
    options: StreamOptions,
    on_frame: Callable[[StreamStats, int | None], None] | None = None,
) -> StreamStats:
    """Segment ``source`` as described in the module docstring.

    ``on_frame(stats, total)`` is called after every frame (progress display; ``total`` is the
    file's frame count, None for live sources).  Returns the statistics; raises
    :class:`StreamError` when the source cannot be opened or breaks (outputs finalised first).
    """
    options = options.validated()
    threshold = predictor.threshold if options.threshold is None else options.threshold
    if options.frames_dir is not None:
        options.frames_dir.mkdir(parents=True, exist_ok=True)
    cap = open_capture(source, options.timeout_s)
    stats = StreamStats(source=source)
    total = None if is_live(source) else _frame_count(cap)
    if total is not None and options.max_frames is not None:
        total = min(total, options.max_frames)
    fps_out = options.fps or _source_fps(cap) or DEFAULT_FPS
    video: _VideoOut | None = None
    mask: np.ndarray | None = None
    detect_cuts = options.every > 1 and options.scene_cut is not None
    last_scene: tuple[np.ndarray, np.ndarray] | None = None  # signature of the last segmented frame
    segment_seconds = 0.0
    start = time.perf_counter()
    try:
        while options.max_frames is None or stats.frames_read < options.max_frames:
            ok, frame = cap.read()
            if not ok or frame is None:
                stats.error = _why_it_stopped(source, stats.frames_read, _frame_count(cap))
                stats.ended = "error" if stats.error else "end"
                break
            index = stats.frames_read
            stats.frames_read += 1
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            elif frame.shape[2] == 4:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
            h, w = frame.shape[:2]
            scene = scene_signature(frame) if detect_cuts else None
            due = index % options.every == 0
            cut = (not due and scene is not None and last_scene is not None and options.scene_cut is not None
                   and scene_change(last_scene, scene) > options.scene_cut)
            if mask is None or due or cut:  # the first frame is always segmented
                # A new scene gets its own mask now: the last one belongs to what the camera saw before.
                stats.scene_cuts += int(cut)
                last_scene = scene
                t0 = time.perf_counter()
                mask = predictor.predict_one(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).mask(threshold)
                segment_seconds += time.perf_counter() - t0
                stats.frames_segmented += 1
                if options.frames_dir is not None:
                    _write_frame_files(options.frames_dir, index, frame, mask)
            elif mask.shape != (h, w):
                mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
            if options.out_video is not None:
                if video is None:
                    video = _VideoOut(options.out_video, options.codec, fps_out, (w, h))
                video.write(annotate(frame, mask))
                stats.frames_written += 1
            _update_rates(stats, start, segment_seconds)
            if on_frame is not None:
                on_frame(stats, total)
        else:
            stats.ended = "max-frames"
    except KeyboardInterrupt:
        stats.ended = "interrupted"
    except BaseException:
        if video is not None:
            video.abandon()
        cap.release()
        raise
    cap.release()
    if video is not None:
        video.finish()
        stats.out_video = str(options.out_video)
        stats.codec = video.fourcc
    if options.frames_dir is not None:
        stats.frames_dir = str(options.frames_dir)
    _update_rates(stats, start, segment_seconds)
    if stats.frames_read == 0 and stats.ended != "interrupted":
        raise StreamError(f"{source}: no frame could be read (not a video, or an empty one)")
    if stats.error:
        raise StreamError(stats.error)
    return stats


def _update_rates(stats: StreamStats, start: float, segment_seconds: float) -> None:
    stats.seconds = time.perf_counter() - start
    stats.fps = stats.frames_read / stats.seconds if stats.seconds > 0 else 0.0
    stats.segment_ms = 1000.0 * segment_seconds / stats.frames_segmented if stats.frames_segmented else 0.0


def _why_it_stopped(source: str, frames_read: int, header_count: int | None) -> str | None:
    """None for a normal end of file; else why a failed read means the source broke."""
    if frames_read == 0:
        return None  # reported by the caller as "no frame could be read"
    if is_live(source):
        return f"{source}: the stream stopped after {frames_read} frames (connection closed or device lost)"
    # Headers can be off by a frame or two (containers estimate the count from the duration).
    if header_count is not None and frames_read < header_count - max(2, header_count // 100):
        return f"{source}: the video broke after {frames_read} of {header_count} frames (truncated or corrupt file)"
    return None
