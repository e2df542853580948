"""``cracksam serve``: the HTTP service and its web page (see :mod:`cracksam.service`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any

import typer

from cracksam.cli.options import MODEL_HELP, RANDOM_BASE_HELP, RUNTIME_HELP, TRUST_HELP
from cracksam.cli.tree import COMMON, Alias, alias_params, make_command, resolve_tree, set_option
from cracksam.cli.tree import print_config as show_config
from cracksam.inference_modes import MODE_HELP, SCALE_HELP
from cracksam.service.settings import ENV_VARS, ServiceSettings, env_settings


def _default(name: str) -> Any:
    f = next(f for f in fields(ServiceSettings) if f.name == name)
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _help(text: str, name: str, default: bool = True) -> str:
    """A flag's help with the default (the dataclass's: the only place it is written) and the
    environment variable(s) that also set it."""
    shown = f" (default {_default(name)})" if default else ""
    return f"{text}{shown} [env {', '.join(ENV_VARS[name])}, CRACKSAM_SERVE__{name.upper()}]"


def _opt(name: str, annotation: Any, text: str, *decls: str, default: bool = True) -> Alias:
    flag = decls or (f"--{name.replace('_', '-')}",)
    return Alias(name, annotation, typer.Option(None, *flag, help=_help(text, name, default)))


# Every flag is a ServiceSettings key (see cracksam.cli.tree: defaults < --config < CRACKSAM_<FIELD>
# variables < CRACKSAM_SERVE__<FIELD> < --set < flags).
ALIASES: dict[str, Alias] = {
    "model": _opt("model", str | None, MODEL_HELP, "--model", "-m", default=False),
    "host": _opt("host", str | None, "Address to listen on (0.0.0.0: all)."),
    "port": _opt("port", int | None, "TCP port (0: any free port)."),
    "base": _opt("base", str | None, "SAM base checkpoint for a delta checkpoint.", default=False),
    "allow_random_base": Alias("allow_random_base", bool, typer.Option(
        False, "--allow-random-base", help=RANDOM_BASE_HELP), lambda v: True if v else None),
    "device": _opt("device", str | None, "cpu or cuda (PyTorch), CPU/GPU (OpenVINO)."),
    "threads": _opt("threads", int | None, "CPU threads of each request (default: the cores shared among the "
                    "--concurrency requests).", default=False),
    "concurrency": Alias("workers", int | None, typer.Option(None, "--concurrency", help=_help(
        "Requests segmented at the same time (default: 2, at most one per core).", "workers", default=False))),
    "runtime": _opt("runtime", str | None, RUNTIME_HELP, "--runtime", default=False),
    "mode": _opt("mode", str | None, MODE_HELP, default=False),
    "scale": _opt("scale", float | None, SCALE_HELP, default=False),
    "overlap": _opt("tile_overlap", float | None, "Tile mode: window overlap fraction.", "--overlap"),
    "batch_size": _opt("batch_size", int | None, "Windows per forward pass."),
    "threshold": _opt("threshold", float | None, "Default crack probability threshold."),
    "max_upload_mb": _opt("max_upload_mb", float | None, "Largest upload, MiB."),
    "max_pixels": _opt("max_pixels", int | None, "Largest image, pixels."),
    "timeout_s": _opt("timeout_s", float | None, "Longest time for one request, s."),
    "max_pending": _opt("max_pending", int | None, "Requests that may wait for a worker before 503 (busy)."),
    "model_id": _opt("model_id", str | None, "Model id to report (default: from the model files' hash).",
                     default=False),
    "log_level": _opt("log_level", str | None, "critical/error/warning/info/debug."),
    "trust": Alias("trust", bool, typer.Option(False, "--trust", help=_help(TRUST_HELP, "trust", default=False)),
                   lambda v: True if v else None),
    "max_inflight_upload_mb": _opt(
        "max_inflight_upload_mb", float | None, "Upload MiB held at once, all requests together (default: 256, or "
        "--max-upload-mb if larger); 503 past it.", default=False),
    "max_inflight_pixels": _opt(
        "max_inflight_pixels", int | None, "Decoded pixels processed at once, all requests together (default: 64 M, "
        "or --max-pixels if larger); 503 past it.", default=False),
    "client_upload_share": _opt(
        "client_upload_share", float | None, "Share of the in-flight upload budget one client address may hold, "
        "in (0, 1]; 503 past it. 1 behind a reverse proxy, where every client has the proxy's address."),
    "upload_idle_timeout_s": _opt(
        "upload_idle_timeout_s", float | None, "Seconds an upload body may send nothing before it is answered 408 "
        "and its share of the budget freed."),
    "max_connections": _opt("max_connections", int | None, "Open connections, all clients."),
    "max_connections_per_client": _opt("max_connections_per_client", int | None,
                                       "Open connections from one address (0: no cap)."),
    "header_timeout_s": _opt("header_timeout_s", float | None, "Seconds a client has to send its request headers."),
    "keep_alive_s": _opt("keep_alive_s", float | None, "Seconds an idle keep-alive connection stays open."),
}

PARAMS: dict[str, tuple[Any, Any]] = {
    "config": COMMON["config"],
    **alias_params(ALIASES),
    "workers": (int | None, typer.Option(None, "--workers", hidden=True,
                                         help="Deprecated name of --concurrency (in train/evaluate --workers means "
                                         "data-loader processes).")),
    "set_items": set_option("port=8080"),
    "print_config": COMMON["print_config"],
    "help_config": COMMON["help_config"],
}

# The command's runtime differs from the library's (torch, which never writes an export cache):
# the fastest parity-checked export (cracksam.deployment.runtime_cache).
COMMAND_DEFAULTS = {"runtime": "auto"}


def resolve_settings(values: dict[str, Any], environ: Mapping[str, str] | None = None) -> ServiceSettings:
    """The service's settings from ``--config``, the environment, ``--set`` and the flags."""
    from cracksam.overrides import Assignment
    from cracksam.threads import check_threads

    values = {**values, "concurrency": _concurrency(values.get("concurrency"), values.pop("workers", None))}
    values["threads"] = check_threads(values.get("threads"))
    env = os.environ if environ is None else environ
    legacy = [Assignment(name, value, var) for name, (value, var) in env_settings(env).items()]
    settings, _ = resolve_tree(ServiceSettings, "serve", ALIASES, values, environ=env, defaults=COMMAND_DEFAULTS,
                               env_aliases=legacy)
    return settings.validated()


def _serve(print_config: bool, **values: Any) -> None:
    """Serve crack segmentation over HTTP: POST /v1/segment, a web page at /, API docs at /docs.

    Every option can also be set by its environment variable, --set KEY=VALUE or --config (--help-config).
    The service listens on 127.0.0.1 only unless --host says otherwise.  Ctrl-C stops it.
    """
    import logging

    from rich.console import Console

    from cracksam.errors import CheckpointError, CrackSAMError
    from cracksam.models.default import resolve_model_path
    from cracksam.service.server import bind
    from cracksam.service.server import serve as run_server

    settings = resolve_settings(values)
    if print_config:
        show_config(settings)
        return
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


SERVE_DOC = _serve.__doc__ or ""


def register(app: typer.Typer) -> None:
    app.command("serve")(make_command("serve", SERVE_DOC, PARAMS, _serve))
