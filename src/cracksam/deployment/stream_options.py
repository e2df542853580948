"""What :func:`cracksam.deployment.stream.run_stream` does with a video: which frames are
segmented, where the outputs go, when it stops.  A section of ``cracksam stream``'s config tree
(``stream.every``, ``stream.out_video`` ...), so each field carries its help text."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from cracksam.config import help_meta
from cracksam.deployment.video import DEFAULT_SCENE_CUT
from cracksam.errors import ConfigError


@dataclass
class StreamOptions:
    every: int = field(default=1, metadata=help_meta(
        "Segment every N-th frame (0, N, 2N, ...); the others reuse the last mask."))
    max_frames: int | None = field(default=None, metadata=help_meta("Stop after reading this many frames."))
    out_video: Path | None = field(default=None, metadata=help_meta("Annotated video to write (.mp4 or .avi)."))
    frames_dir: Path | None = field(default=None, metadata=help_meta(
        "Folder for each segmented frame (.jpg) and its mask (_mask.png)."))
    codec: str | None = field(default=None, metadata=help_meta(
        "FourCC of the output video; None: from out_video's extension (.mp4 H.264 where available, .avi MJPG)."))
    fps: float | None = field(default=None, metadata=help_meta(
        "Frame rate of the output video; None: the source's (25 when it is unknown)."))
    threshold: float | None = field(default=None, metadata=help_meta(
        "Crack probability threshold of the masks; None: the predictor's."))
    timeout_s: float = field(default=10.0, metadata=help_meta(
        "Seconds to wait when opening or reading a network stream."))
    # With every > 1: segment a frame early when its scene_change() score against the last
    # segmented frame exceeds this (0..1); None turns the detection off.
    scene_cut: float | None = field(default=DEFAULT_SCENE_CUT, metadata=help_meta(
        "With every > 1: how much a frame may differ from the last segmented one (0-1) before it is segmented "
        "at once; 0 or None turns this off."))

    def __post_init__(self) -> None:
        if self.scene_cut == 0:  # as on the command line (--scene-cut 0), so a YAML file can say it too
            self.scene_cut = None

    def validated(self) -> StreamOptions:
        if self.every < 1:
            raise ConfigError(f"--every must be >= 1, got {self.every}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"--max-frames must be >= 1, got {self.max_frames}")
        if self.fps is not None and not (math.isfinite(self.fps) and 0 < self.fps <= 1000):
            raise ConfigError(f"--fps must be in (0, 1000], got {self.fps}")
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise ConfigError(f"--threshold must be in (0, 1), got {self.threshold}")
        if self.codec is not None and len(self.codec) != 4:
            raise ConfigError(f"--codec must be a four-character code such as mp4v or MJPG, got {self.codec!r}")
        if not self.timeout_s > 0:
            raise ConfigError(f"--timeout must be > 0 s, got {self.timeout_s}")
        if self.scene_cut is not None and not 0 < self.scene_cut <= 1:
            raise ConfigError(f"--scene-cut must be in (0, 1] (0 turns it off), got {self.scene_cut}")
        return self


__all__ = ["StreamOptions"]
