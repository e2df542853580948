"""Running the app under uvicorn: in the foreground (``cracksam serve``) or in a background
thread (tests, benchmarks, notebooks).

The listening socket is bound here, before uvicorn starts, so that a port already in use is a
clear :class:`~cracksam.errors.ConfigError` (uvicorn itself would log and exit the process) and
so that port 0 (any free port) works, with the chosen port readable from :attr:`ThreadedServer.port`.
The connection limits of :class:`~cracksam.service.settings.ServiceSettings` (caps, header and
keep-alive timeouts) are applied by :mod:`cracksam.service.protocol`.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import uvicorn

from cracksam.errors import ConfigError
from cracksam.service.protocol import protocol_options
from cracksam.service.settings import ServiceSettings


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv6 when ``host`` contains a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app: Any, log_level: str = "info", access_log: bool = True,
                   configure_logging: bool = True, settings: ServiceSettings | None = None) -> uvicorn.Config:
    """uvicorn's settings; ``configure_logging=False`` leaves the process's logging alone (embedding).
    ``settings`` gives the connection limits (default: those of ``ServiceSettings()``)."""
    kwargs: dict[str, Any] = {} if configure_logging else {"log_config": None}
    return uvicorn.Config(
        app,
        **kwargs,
        **protocol_options(settings or ServiceSettings()),
        log_level=log_level.lower(),
        access_log=access_log,
        timeout_graceful_shutdown=10,
        server_header=False,
    )


class ThreadedServer:
    """``with ThreadedServer(app) as server: httpx.get(server.url + "/health")`` -- uvicorn in a
    daemon thread on a loopback port, stopped (gracefully, then abandoned) on exit."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning",
                 settings: ServiceSettings | None = None) -> None:
        self.host = host
        self._sock = bind(host, port)
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn_config(app, log_level=log_level, access_log=False, configure_logging=False, settings=settings)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="cracksam-uvicorn", daemon=True)
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self._sock])
        except BaseException as exc:  # noqa: BLE001 - surfaced by start()
            self.error = exc

    def start(self, timeout: float = 30.0) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if self.error is not None or not self._thread.is_alive():
                raise RuntimeError(f"the server did not start: {self.error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not start in time")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def serve(build_app: Callable[[Callable[[], None]], Any], sock: socket.socket, log_level: str = "info",
          settings: ServiceSettings | None = None) -> Any:
    """Run the app made by ``build_app(stop)`` in the foreground on the bound ``sock`` until Ctrl-C /
    SIGTERM, or until the app calls ``stop()`` (e.g. its model failed to load).  Returns the app."""
    server: list[uvicorn.Server] = []

    def stop() -> None:
        if server:
            server[0].should_exit = True

    app = build_app(stop)
    server.append(uvicorn.Server(uvicorn_config(app, log_level=log_level, configure_logging=False, settings=settings)))
    try:
        server[0].run(sockets=[sock])
    finally:
        sock.close()
    return app
