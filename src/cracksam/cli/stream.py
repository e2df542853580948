"""``cracksam stream``: segment a video file, an HTTP MJPEG stream or a camera, frame by frame."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cracksam.cli.predictor_flags import predictor_aliases, runtime_env_alias
from cracksam.cli.tree import Alias, as_str, command_params, make_command, resolve_tree, switch
from cracksam.cli.tree import print_config as show_config

if TYPE_CHECKING:
    from cracksam.cli.stream_config import StreamConfig

# Same value as cracksam.deployment.stream.DEFAULT_SCENE_CUT (not imported: that module loads
# OpenCV and the runtimes, and `cracksam --help` must stay fast; a test keeps them equal).
DEFAULT_SCENE_CUT = 0.3

_PREDICTOR = predictor_aliases(window=False, batches=False, threshold=("predictor.threshold", "stream.threshold"))

# Every flag is a StreamConfig key (see cracksam.cli.tree: defaults < --config < CRACKSAM_RUNTIME <
# CRACKSAM_STREAM__* < --set < flags): stream.* are the frames and outputs, predictor.* the model.
ALIASES: dict[str, Alias] = {
    "source": Alias("source", str | None, typer.Argument(
        None, metavar="SOURCE", show_default=False,
        help="Video file, stream URL (e.g. http://cam/video.mjpg) or camera index (0).")),
    "model": _PREDICTOR.pop("model"),
    "every": Alias("stream.every", int | None, typer.Option(
        None, "--every", "-n", help="Segment every N-th frame (default 1); the others reuse the last mask "
        "(a scene change is segmented at once, see --scene-cut).")),
    "scene_cut": Alias("stream.scene_cut", float | None, typer.Option(
        None, "--scene-cut", metavar="SCORE",
        help="With --every > 1: how much a frame may differ from the last segmented one (0-1, grey histogram "
        "and thumbnail difference) before it is segmented at once instead of reusing a mask from another "
        f"scene (default {DEFAULT_SCENE_CUT}); 0 turns this off.")),
    "out_video": Alias("stream.out_video", Path | None, typer.Option(
        None, "--out-video", "-o", help="Annotated video to write (.mp4 or .avi)."), as_str),
    "frames_dir": Alias("stream.frames_dir", Path | None, typer.Option(
        None, "--frames-dir", help="Folder for each segmented frame (.jpg) and its mask (_mask.png)."), as_str),
    "max_frames": Alias("stream.max_frames", int | None, typer.Option(
        None, "--max-frames", help="Stop after this many frames.")),
    "codec": Alias("stream.codec", str | None, typer.Option(
        None, "--codec", metavar="FOURCC",
        help="Codec of the output video. Default: .mp4 H.264 (avc1, plays in browsers) where OpenCV has it, else "
        "mp4v with a warning; .avi MJPG. vp09: browser-playable .mp4 without H.264, slow to encode.")),
    "fps": Alias("stream.fps", float | None, typer.Option(
        None, "--fps", help="Frame rate of the output video (default: the source's).")),
    "timeout": Alias("stream.timeout_s", float | None, typer.Option(
        None, "--timeout", help="Seconds to wait when opening or reading a network stream (default 10).")),
    **_PREDICTOR,
    "json_out": switch("json", "--json/--no-json", "Print the run's statistics as JSON."),
    "progress": switch("progress", "--progress/--no-progress", "Live frames-per-second line (default) or none."),
}

PARAMS = command_params(ALIASES, "stream.every=5")


def resolve_config(values: dict[str, Any], environ: Mapping[str, str] | None = None) -> StreamConfig:
    """The command's config from ``--config``, the environment, ``--set`` and the flags."""
    from cracksam.cli.stream_config import StreamConfig

    env = os.environ if environ is None else environ
    cfg, _ = resolve_tree(StreamConfig, "stream", ALIASES, values, environ=env, env_aliases=runtime_env_alias(env))
    return cfg


def stream(print_config: bool, **values: Any) -> None:
    """Segment a video, stream or camera; writes an annotated video and/or frames with masks.

    Without --out-video and --frames-dir the stream is segmented for its statistics only
    (frames, throughput, time per segmentation).

    Ends at the end of a file, after --max-frames, or on Ctrl-C; the video written so far is
    kept in every case.  A source that cannot be opened or breaks is an error (exit 2).
    Every option is also a config key: --config, --set KEY=VALUE, CRACKSAM_STREAM__* (--help-config).
    """
    from cracksam.errors import ConfigError

    cfg = resolve_config(values)  # every check that needs no file has run here, once
    if print_config:
        show_config(cfg)
        return
    if cfg.source is None:
        raise ConfigError("missing SOURCE: a video file, stream URL or camera index (or source in --config)")
    from rich.console import Console

    from cracksam.cli.inputs import output_dir
    from cracksam.deployment.runtime_cache import describe_choice, select_backend
    from cracksam.deployment.stream import StreamStats, check_source, run_stream
    from cracksam.inference.predictor import open_predictor
    from cracksam.progress_bar import progress_bar
    from cracksam.threads import resolve_threads

    check_source(str(cfg.source))  # a missing or unreadable video: one line, before the model loads
    options, json_out = cfg.stream, cfg.json
    out_video, frames_dir = options.out_video, options.frames_dir
    if out_video is not None and out_video.is_dir():
        raise ConfigError(f"--out-video {out_video} is a folder; name a video file")
    if frames_dir is not None and frames_dir.exists() and not frames_dir.is_dir():
        raise ConfigError(f"--frames-dir {frames_dir} exists and is not a folder")
    console = Console(stderr=True, soft_wrap=True)
    predict_options = cfg.predictor.replace(threads=resolve_threads(cfg.predictor.threads))
    predictor = open_predictor(predict_options, select_backend,  # the one door: resolves and loads the model
                               None if json_out else lambda text: console.print(text, highlight=False))
    if frames_dir is not None:  # created once the model is known good: a refused run leaves no folder
        output_dir(frames_dir, "--frames-dir")
    if not json_out:
        console.print(f"inference: {predictor.inference_summary()}", highlight=False)
        console.print(describe_choice(predictor.runtime_info), highlight=False)
        if out_video is None and frames_dir is None:
            console.print("no --out-video or --frames-dir: statistics only", highlight=False)
    progress = progress_bar(console, enabled=cfg.progress, rate=True)

    with progress:
        task = progress.add_task("frames", total=None, rate="")

        def show(stats: StreamStats, total: int | None) -> None:
            progress.update(task, completed=stats.frames_read, total=total,
                            rate=f"{stats.fps:5.1f} frames/s, {stats.frames_segmented} segmented "
                                 f"({stats.segment_ms:.0f} ms each)")

        with _sigterm_as_interrupt():
            stats = run_stream(predictor, str(cfg.source), options, on_frame=show)

    if json_out:
        typer.echo(json.dumps({**stats.as_dict(), "predictor": predictor.describe()}, indent=2))
    else:
        ended = {"end": "end of video", "max-frames": "--max-frames reached",
                 "interrupted": "stopped by Ctrl-C or SIGTERM"}
        outputs = ", ".join(str(p) for p in (stats.out_video, stats.frames_dir) if p)
        console.print(
            f"{stats.frames_read} frames read, {stats.frames_segmented} segmented"
            + (f" ({stats.scene_cuts} at scene changes)" if stats.scene_cuts else "")
            + f", {stats.fps:.1f} frames/s "
            f"({ended.get(stats.ended, stats.ended)}); outputs: {outputs or '-'}"
        )


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, ``docker stop``, systemd) ends the stream like Ctrl-C: the video written
    so far is finalised instead of being left without its index."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(app: typer.Typer) -> None:
    app.command("stream")(make_command("stream", stream.__doc__ or "", PARAMS, stream))
