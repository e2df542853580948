"""Video helpers of :mod:`cracksam.deployment.stream`: scene-change scores (is the last mask still
about what the camera sees?) and which codec a video file gets (H.264 where OpenCV can encode it)."""

from __future__ import annotations

import functools
import os
import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np

from cracksam.errors import CrackSAMWarning

#: Codec (FourCC) chosen from the output's extension when none is given ("avc1": H.264 when this
#: OpenCV can encode it, else mp4v; see :func:`default_codec`).
CODEC_BY_SUFFIX = {".mp4": "avc1", ".m4v": "avc1", ".mov": "avc1", ".avi": "MJPG", ".mkv": "MJPG"}
FALLBACK_CODEC = "mp4v"
DEFAULT_SCENE_CUT = 0.3


# -- scene changes ----------------------------------------------------------------------------

_THUMB = (32, 32)


def scene_signature(frame_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What :func:`scene_change` compares: a 32x32 grey thumbnail (area-averaged, so sensor noise
    and a thin moving crack hardly count) and its normalised 32-bin histogram."""
    grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY) if frame_bgr.ndim == 3 else frame_bgr
    thumb = cv2.resize(grey, _THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)
    hist = cv2.calcHist([thumb], [0], None, [32], [0, 256])
    return thumb, hist / max(float(hist.sum()), 1.0)


def scene_change(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """0 (same view) .. 1 (nothing in common): the larger of the Bhattacharyya distance of the
    histograms (a cut to a darker or brighter scene) and the mean absolute difference of the
    thumbnails / 255 (a cut to a different view with similar grey levels, or a fast pan)."""
    hist = float(cv2.compareHist(a[1], b[1], cv2.HISTCMP_BHATTACHARYYA))
    diff = float(np.abs(a[0] - b[0]).mean()) / 255.0
    return max(0.0, min(1.0, max(hist, diff)))


# -- codecs -----------------------------------------------------------------------------------


@functools.cache
def codec_available(fourcc: str, suffix: str = ".mp4") -> bool:
    """Whether this OpenCV build can write ``fourcc`` into a ``suffix`` file (tried on a tiny
    video; FFmpeg's complaints about a missing encoder are kept off the terminal)."""
    with tempfile.TemporaryDirectory() as tmp, _quiet_stderr():
        path = str(Path(tmp) / f"probe{suffix}")
        writer = cv2.VideoWriter(path, cv2.VideoWriter.fourcc(*fourcc), 10.0, (64, 64))
        ok = writer.isOpened()
        if ok:
            writer.write(np.zeros((64, 64, 3), np.uint8))
        writer.release()
    return ok


class _quiet_stderr:  # noqa: N801 - used as a context manager
    """Send file descriptor 2 to /dev/null: FFmpeg and OpenCV log there from native code."""

    def __enter__(self) -> None:
        try:
            self.saved: int | None = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:  # no fd 2 (some embedded interpreters): nothing to hide
            self.saved = None

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)


def default_codec(suffix: str) -> str | None:
    """The FourCC for an output file type: H.264 (avc1) for .mp4/.m4v/.mov where OpenCV has an
    encoder, else mp4v with a warning (pip's opencv-python has none: its mp4v files play in VLC and
    ffmpeg but not in browsers)."""
    fourcc = CODEC_BY_SUFFIX.get(suffix.lower())
    if fourcc != "avc1" or codec_available("avc1", suffix.lower()):
        return fourcc
    warnings.warn(
        f"this OpenCV has no H.264 (avc1) encoder, so the {suffix} video is MPEG-4 Part 2 (mp4v), which browsers "
        "do not play; convert it with `ffmpeg -i IN -c:v libx264 OUT.mp4`, or pass --codec vp09 (plays in "
        "browsers, much slower to encode)",
        CrackSAMWarning,
        stacklevel=2,
    )
    return FALLBACK_CODEC
