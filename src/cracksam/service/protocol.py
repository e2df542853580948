"""Connection-level limits of the service: uvicorn's h11 protocol with a cap and a header deadline.

uvicorn bounds neither the open connections nor the time a client may take to send its request
headers: 300 clients trickling headers one byte at a time all stay open (a slow-header attack),
and ``limit_concurrency`` only answers 503 to requests whose headers are complete.  The protocol
class made by :func:`guarded_h11` adds, per connection:

* a cap on connections, in all and per client address: a connection over it gets a JSON 503 and
  is closed at once (so one client's 300 sockets do not lock out the others);
* a deadline for the request headers (``header_timeout_s`` from the connection's start or the end
  of the previous response): past it the connection gets a JSON 408 and is closed;
* JSON for the 400 that uvicorn answers malformed requests with (``Content-Length: abc``, a bad
  request line) instead of its plain text.

The h11 implementation is used (not httptools) because these hooks are its Python methods, and
``h11_max_incomplete_event_size`` bounds the header bytes buffered per connection.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

#: Header bytes buffered per connection before h11 refuses the request (uvicorn's default is 16 KiB).
MAX_HEADER_BYTES = 16 * 1024


def raw_json_response(status: int, reason: str, error: str, detail: str) -> bytes:
    """A complete HTTP/1.1 response, written to a transport directly (no request was parsed)."""
    body = json.dumps({"error": error, "detail": detail}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n").encode()
    return head + body


def guarded_h11(header_timeout_s: float, max_connections: int, max_per_client: int) -> type[H11Protocol]:
    """An :class:`H11Protocol` subclass enforcing these limits (``max_per_client`` 0: no per-client cap)."""

    class GuardedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            host = self.client[0] if self.client else None
            clients = (getattr(c, "client", None) for c in self.connections)
            same = sum(1 for client in clients if client and client[0] == host)
            if len(self.connections) > max_connections:
                self._refuse(f"too many connections (limit {max_connections})")
            elif max_per_client and host is not None and same > max_per_client:
                self._refuse(f"too many connections from {host} (limit {max_per_client} per client)")
            else:
                self._arm_header_timer()

        def _refuse(self, detail: str) -> None:
            self.logger.warning("refused a connection: %s", detail)
            self.transport.write(raw_json_response(503, "Service Unavailable", "too_many_connections", detail))
            self.transport.close()

        def _arm_header_timer(self) -> None:
            self._cancel_header_timer()
            self._header_timer = self.loop.call_later(header_timeout_s, self._header_timeout)

        def _cancel_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timeout(self) -> None:
            self._header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.write(raw_json_response(
                    408, "Request Timeout", "header_timeout",
                    f"the request headers did not arrive within {header_timeout_s:g} s"))
                self.transport.close()

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE:  # headers complete: the app's timeout takes over
                self._cancel_header_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm_header_timer()  # the next request on this keep-alive connection has a deadline too

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_timer()
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            body = json.dumps({"error": "bad_request",
                               "detail": "malformed HTTP request (request line, headers or Content-Length)"}).encode()
            headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json"), (b"connection", b"close")]
            try:
                self.transport.write(self.conn.send(h11.Response(status_code=400, headers=headers,
                                                                 reason=b"Bad Request")) or b"")
                self.transport.write(self.conn.send(h11.Data(data=body)) or b"")
                self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
            except h11.LocalProtocolError:  # a response was already under way; just close
                pass
            self.transport.close()

    return GuardedH11Protocol


def protocol_options(settings: Any) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for :class:`~cracksam.service.settings.ServiceSettings`."""
    return {
        "http": guarded_h11(settings.header_timeout_s, settings.max_connections, settings.max_connections_per_client),
        # uvicorn's own cap, a backstop behind the connection cap above (which keeps it from being reached).
        "limit_concurrency": settings.max_connections + 1,
        "timeout_keep_alive": settings.keep_alive_s,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
    }
