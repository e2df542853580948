"""``cracksam stream``: segment a video file, an HTTP MJPEG stream or a camera, frame by frame."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from cracksam.cli.options import (
    DEFAULT_MODEL_NAME,
    MODEL_HELP,
    RANDOM_BASE_HELP,
    RUNTIME_ENV,
    RUNTIME_HELP,
    trust_option,
)
from cracksam.inference_modes import MODE_HELP, SCALE_HELP

# Same value as cracksam.deployment.stream.DEFAULT_SCENE_CUT (not imported: that module loads
# OpenCV and the runtimes, and `cracksam --help` must stay fast; a test keeps them equal).
DEFAULT_SCENE_CUT = 0.3


def stream(
    source: str = typer.Argument(..., help="Video file, stream URL (e.g. http://cam/video.mjpg) or camera index (0)."),
    model: str = typer.Option(DEFAULT_MODEL_NAME, "--model", "-m", help=MODEL_HELP),
    every: int = typer.Option(1, "--every", "-n", help="Segment every N-th frame; the others reuse the last mask "
                              "(a scene change is segmented at once, see --scene-cut)."),
    scene_cut: float = typer.Option(
        DEFAULT_SCENE_CUT, "--scene-cut", metavar="SCORE",
        help="With --every > 1: how much a frame may differ from the last segmented one (0-1, grey histogram "
        "and thumbnail difference) before it is segmented at once instead of reusing a mask from another "
        "scene; 0 turns this off.",
    ),
    out_video: Path | None = typer.Option(None, "--out-video", "-o", help="Annotated video to write (.mp4 or .avi)."),
    frames_dir: Path | None = typer.Option(None, "--frames-dir",
                                           help="Folder for each segmented frame (.jpg) and its mask (_mask.png)."),
    max_frames: int | None = typer.Option(None, "--max-frames", help="Stop after this many frames."),
    codec: str | None = typer.Option(
        None, metavar="FOURCC",
        help="Codec of the output video. Default: .mp4 H.264 (avc1, plays in browsers) where OpenCV has it, else "
        "mp4v with a warning; .avi MJPG. vp09: browser-playable .mp4 without H.264, slow to encode.",
    ),
    fps: float | None = typer.Option(None, help="Frame rate of the output video (default: the source's)."),
    timeout: float = typer.Option(10.0, help="Seconds to wait when opening or reading a network stream."),
    base: str | None = typer.Option(None, "--base", help="SAM base checkpoint for a delta checkpoint."),
    allow_random_base: bool = typer.Option(False, "--allow-random-base", help=RANDOM_BASE_HELP),
    trust: bool = trust_option(),
    mode: str | None = typer.Option(None, "--mode", help=MODE_HELP),
    scale: float | None = typer.Option(None, "--scale", help=SCALE_HELP),
    threshold: float = typer.Option(0.5, help="Crack probability threshold."),
    device: str = typer.Option("cpu", help="cpu or cuda (PyTorch), CPU/GPU (OpenVINO)."),
    threads: int | None = typer.Option(None, help="CPU threads of the runtime (default: every core)."),
    runtime: str = typer.Option("auto", "--runtime", envvar=RUNTIME_ENV, help=RUNTIME_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print the run's statistics as JSON."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No live frames-per-second line."),
) -> None:
    """Segment a video, stream or camera; writes an annotated video and/or frames with masks.

    Without --out-video and --frames-dir the stream is segmented for its statistics only
    (frames, throughput, time per segmentation).

    Ends at the end of a file, after --max-frames, or on Ctrl-C; the video written so far is
    kept in every case.  A source that cannot be opened or breaks is an error (exit 2).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cracksam.cli.inputs import output_dir
    from cracksam.cli.options import model_path_option
    from cracksam.deployment.stream import StreamOptions, StreamStats, run_stream
    from cracksam.errors import ConfigError
    from cracksam.inference_modes import check_options
    from cracksam.threads import resolve_threads

    check_options(mode, scale)
    threads = resolve_threads(threads)
    options = StreamOptions(every=every, max_frames=max_frames, out_video=out_video, frames_dir=frames_dir,
                            codec=codec, fps=fps, threshold=threshold, timeout_s=timeout,
                            scene_cut=scene_cut or None).validated()
    if out_video is not None and out_video.is_dir():
        raise ConfigError(f"--out-video {out_video} is a folder; name a video file")
    if frames_dir is not None and frames_dir.exists() and not frames_dir.is_dir():
        raise ConfigError(f"--frames-dir {frames_dir} exists and is not a folder")
    from cracksam.deployment.runtime_cache import describe_choice, open_predictor
    from cracksam.inference.options import PredictOptions

    console = Console(stderr=True, soft_wrap=True)
    predict_options = PredictOptions(model=str(model_path_option(model)), base=base, device=device, threads=threads,
                                     allow_random_base=allow_random_base, trust=trust, runtime=runtime, mode=mode,
                                     scale=scale, threshold=threshold)
    predictor = open_predictor(predict_options, None if json_out else lambda text: console.print(text, highlight=False))
    if frames_dir is not None:  # created once the model is known good: a refused run leaves no folder
        output_dir(frames_dir, "--frames-dir")
    if not json_out:
        console.print(f"inference: {predictor.inference_summary()}", highlight=False)
        console.print(describe_choice(predictor.runtime_info), highlight=False)
        if out_video is None and frames_dir is None:
            console.print("no --out-video or --frames-dir: statistics only", highlight=False)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        disable=no_progress,
        transient=True,
    )

    with progress:
        task = progress.add_task("frames", total=None, rate="")

        def show(stats: StreamStats, total: int | None) -> None:
            progress.update(task, completed=stats.frames_read, total=total,
                            rate=f"{stats.fps:5.1f} frames/s, {stats.frames_segmented} segmented "
                                 f"({stats.segment_ms:.0f} ms each)")

        with _sigterm_as_interrupt():
            stats = run_stream(predictor, source, options, on_frame=show)

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
    app.command("stream")(stream)
