"""The config tree of ``cracksam stream``: the source, what is done with its frames
(:class:`~cracksam.deployment.stream_options.StreamOptions`, key ``stream``) and the predictor
(:class:`~cracksam.inference.options.PredictOptions`, key ``predictor``).

Reachable from ``--config``, ``CRACKSAM_STREAM__<KEY>`` variables, ``--set`` and the short flags
(:mod:`cracksam.cli.tree`); the checks that need no file run once, in ``__post_init__``.  Imported
by the command when it runs (the deployment package loads OpenCV and torch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cracksam.config import help_meta
from cracksam.deployment.stream_options import StreamOptions
from cracksam.errors import ConfigError
from cracksam.inference.options import PredictOptions
from cracksam.inference_modes import check_options
from cracksam.threads import check_threads


@dataclass(frozen=True)
class StreamConfig:
    """``cracksam stream``: one video source segmented frame by frame."""

    # An int too: a YAML file's `source: 0` is a camera index, as `cracksam stream 0` is.
    source: str | int | None = field(default=None, metadata=help_meta(
        "Video file, stream URL (e.g. http://cam/video.mjpg) or camera index (0); the SOURCE argument."))
    stream: StreamOptions = field(default_factory=StreamOptions, metadata=help_meta("Frames, outputs and stopping."))
    predictor: PredictOptions = field(default_factory=PredictOptions, metadata=help_meta("The model and how it runs."))
    json: bool = field(default=False, metadata=help_meta("Print the run's statistics as JSON."))
    progress: bool = field(default=True, metadata=help_meta("Show a live frames-per-second line."))

    def __post_init__(self) -> None:
        check_options(self.predictor.mode, self.predictor.scale)
        check_threads(self.predictor.threads)
        self.stream.validated()
        if not 0 < self.predictor.threshold < 1:  # stream.threshold (None: this one) is checked above
            raise ConfigError(f"--threshold must be in (0, 1), got {self.predictor.threshold}")


__all__ = ["StreamConfig"]
