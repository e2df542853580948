"""``cracksam serve``: the HTTP service and its web page (see :mod:`cracksam.service`)."""

from __future__ import annotations

import typer

from cracksam.cli.options import MODEL_HELP, RANDOM_BASE_HELP, RUNTIME_HELP, TRUST_HELP
from cracksam.inference_modes import MODE_HELP, SCALE_HELP
from cracksam.service.settings import ENV_VARS, ServiceSettings


def _env(field: str) -> str | list[str]:
    names = ENV_VARS[field]
    return names[0] if len(names) == 1 else list(names)


def serve(
    model: str | None = typer.Option(None, "--model", "-m", envvar=_env("model"), show_envvar=True,
                                     help=MODEL_HELP),
    host: str = typer.Option("127.0.0.1", envvar=_env("host"), help="Address to listen on (0.0.0.0: all)."),
    port: int = typer.Option(8000, envvar=_env("port"), help="TCP port (0: any free port)."),
    base: str | None = typer.Option(None, "--base", envvar=_env("base"),
                                    help="SAM base checkpoint for a delta checkpoint."),
    allow_random_base: bool = typer.Option(False, "--allow-random-base", help=RANDOM_BASE_HELP),
    device: str = typer.Option("cpu", envvar=_env("device"), help="cpu or cuda (PyTorch), CPU/GPU (OpenVINO)."),
    threads: int | None = typer.Option(None, envvar=_env("threads"), help="CPU threads of each request (default: "
                                       "the cores shared among the --concurrency requests)."),
    concurrency: int | None = typer.Option(None, "--concurrency", envvar=_env("workers"), show_envvar=True,
                                           help="Requests segmented at the same time (default: 2, at most one per "
                                           "core)."),
    workers: int | None = typer.Option(None, "--workers", hidden=True,
                                       help="Deprecated name of --concurrency (in train/evaluate --workers means "
                                       "data-loader processes)."),
    runtime: str = typer.Option("auto", "--runtime", envvar=_env("runtime"), help=RUNTIME_HELP),
    mode: str | None = typer.Option(None, "--mode", envvar=_env("mode"), help=MODE_HELP),
    scale: float | None = typer.Option(None, "--scale", envvar=_env("scale"), help=SCALE_HELP),
    overlap: float = typer.Option(0.25, envvar=_env("tile_overlap"),
                                  help="Window overlap fraction (tile and native windows)."),
    batch_size: int = typer.Option(4, envvar=_env("batch_size"), help="Windows per forward pass."),
    threshold: float = typer.Option(0.5, envvar=_env("threshold"), help="Default crack probability threshold."),
    max_upload_mb: float = typer.Option(50.0, envvar=_env("max_upload_mb"), help="Largest upload, MiB."),
    max_pixels: int = typer.Option(50_000_000, envvar=_env("max_pixels"), help="Largest image, pixels."),
    timeout_s: float = typer.Option(60.0, envvar=_env("timeout_s"), help="Longest time for one request, s."),
    max_pending: int = typer.Option(32, envvar=_env("max_pending"),
                                    help="Requests that may wait for a worker before 503 (busy)."),
    model_id: str | None = typer.Option(None, envvar=_env("model_id"),
                                        help="Model id to report (default: from the model files' hash)."),
    log_level: str = typer.Option("info", envvar=_env("log_level"), help="critical/error/warning/info/debug."),
    trust: bool = typer.Option(False, "--trust", envvar=_env("trust"), help=TRUST_HELP),
    max_inflight_upload_mb: float | None = typer.Option(
        None, envvar=_env("max_inflight_upload_mb"),
        help="Upload MiB held at once, all requests together (default: 256, or --max-upload-mb if larger); "
             "503 past it."),
    max_inflight_pixels: int | None = typer.Option(
        None, envvar=_env("max_inflight_pixels"),
        help="Decoded pixels processed at once, all requests together (default: 64 M, or --max-pixels if larger); "
             "503 past it."),
    max_connections: int = typer.Option(256, envvar=_env("max_connections"), help="Open connections, all clients."),
    max_connections_per_client: int = typer.Option(32, envvar=_env("max_connections_per_client"),
                                                   help="Open connections from one address (0: no cap)."),
    header_timeout_s: float = typer.Option(10.0, envvar=_env("header_timeout_s"),
                                           help="Seconds a client has to send its request headers."),
    keep_alive_s: float = typer.Option(5.0, envvar=_env("keep_alive_s"),
                                       help="Seconds an idle keep-alive connection stays open."),
) -> None:
    """Serve crack segmentation over HTTP: POST /v1/segment, a web page at /, API docs at /docs.

    Every option can also be set by the environment variable shown with it.
    The service listens on 127.0.0.1 only unless --host says otherwise.  Ctrl-C stops it.
    """
    import logging

    from rich.console import Console

    from cracksam.errors import CheckpointError, CrackSAMError
    from cracksam.models.default import resolve_model_path
    from cracksam.service.server import bind
    from cracksam.service.server import serve as run_server
    from cracksam.threads import check_threads, default_workers

    concurrency = _concurrency(concurrency, workers)
    settings = ServiceSettings(
        host=host, port=port, model=model, base=base, allow_random_base=allow_random_base, device=device,
        threads=check_threads(threads), runtime=runtime,
        workers=default_workers() if concurrency is None else concurrency, mode=mode, scale=scale,
        tile_overlap=overlap, batch_size=batch_size,
        threshold=threshold, max_upload_mb=max_upload_mb, max_pixels=max_pixels, timeout_s=timeout_s,
        max_pending=max_pending, model_id=model_id, log_level=log_level, trust=trust,
        max_inflight_upload_mb=max_inflight_upload_mb, max_inflight_pixels=max_inflight_pixels,
        max_connections=max_connections, max_connections_per_client=max_connections_per_client,
        header_timeout_s=header_timeout_s, keep_alive_s=keep_alive_s,
    ).validated()
    model_path = resolve_model_path(settings.model)
    if not model_path.exists():
        raise CheckpointError(f"{model_path}: model not found")
    settings = ServiceSettings(**{**vars(settings), "model": str(model_path)})
    sock = bind(settings.host, settings.port)  # before the slow imports: a busy port fails at once

    from cracksam.service.app import create_app

    logging.basicConfig(level=settings.log_level.upper() if settings.log_level != "trace" else "DEBUG",
                        format="%(levelname)s:     %(message)s")
    bound_port = sock.getsockname()[1]
    shown_host = f"[{settings.host}]" if ":" in settings.host else settings.host
    Console(stderr=True).print(
        f"cracksam serve: http://{shown_host}:{bound_port}/ (web page), /docs (API); model {model_path} "
        f"loading in the background ({settings.workers} request(s) at once x {settings.cpu_threads} thread(s), "
        f"runtime {settings.runtime}); "
        "/health says "
        "200 when ready.  Ctrl-C stops."
    )
    app = run_server(lambda stop: create_app(settings, on_load_error=lambda _exc: stop()), sock, settings.log_level,
                     settings=settings)
    state = app.state.service
    if state.load_error is not None:
        raise CrackSAMError(f"cannot serve: {state.load_error}")


def _concurrency(concurrency: int | None, workers: int | None) -> int | None:
    """``--concurrency``, or the deprecated ``--workers`` with a warning (the same word means
    data-loader processes in ``train`` and ``evaluate``)."""
    import warnings

    from cracksam.errors import ConfigError, CrackSAMWarning

    if workers is None:
        return concurrency
    if concurrency is not None and concurrency != workers:
        raise ConfigError(f"--workers {workers} and --concurrency {concurrency} disagree; give --concurrency only")
    warnings.warn("serve --workers is deprecated: it is now --concurrency (requests segmented at once)",
                  CrackSAMWarning, stacklevel=2)
    return workers


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
