"""Upload size limit, enforced before the body is read and again while it streams in.

A pure ASGI middleware (not a FastAPI dependency) because the check must happen before any
handler or form parser touches the body: a ``Content-Length`` over the limit is refused at once
(the body is never read), and a body without one (chunked) is counted as it arrives and cut off
as soon as it passes the limit -- never buffered whole.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from cracksam.service.problems import ApiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def too_large(limit: int, size: int | None = None) -> ApiError:
    seen = f"{size} bytes" if size is not None else f"more than {limit} bytes"
    return ApiError(413, "payload_too_large", f"upload is too large ({seen}; limit {limit} bytes)",
                    headers={"Connection": "close"})


class BodySizeLimit:
    """Refuse request bodies larger than ``max_bytes`` with 413 and the service's JSON error."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reply(self, send: Send, status: int, error: str, detail: str) -> None:
        body = json.dumps({"error": error, "detail": detail}).encode()
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close")],
        })
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = [v for k, v in scope.get("headers", []) if k.lower() == b"content-length"]
        if declared:
            try:
                size = int(declared[0])
                if size < 0:
                    raise ValueError
            except ValueError:
                await self._reply(send, 400, "bad_request", "invalid Content-Length header")
                return
            if size > self.max_bytes:
                err = too_large(self.max_bytes, size)
                await self._reply(send, err.status, err.error, str(err.detail))
                return
        received = 0
        limit = self.max_bytes

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
            return message

        await self.app(scope, counted, send)
