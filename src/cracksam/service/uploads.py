"""Receiving uploads: streamed to a spooled temporary file under a budget shared by all requests.

An upload is never held whole in memory: the raw body is written chunk by chunk into a
:class:`~tempfile.SpooledTemporaryFile` (memory up to :data:`SPOOL_BYTES`, then a file on disk), and
multipart files are spooled the same way by Starlette's parser.  The bytes of every upload in flight
count against one :class:`Budget` (``max_inflight_upload_mb``): a request whose ``Content-Length``
does not fit is answered 503 with ``Retry-After`` before its body is read, and a chunked body is
cut off as soon as it stops fitting.  So twelve clients that each stop one byte short of a 45 MiB
upload hold neither 540 MB of memory nor more than the budget of disk.

One client must not be able to hold that whole budget (six connections declaring 50 MiB each and
sending nothing locked every other client out until they timed out): each client address may hold
only its share (:class:`ClientBudgets`, ``client_upload_share``; over it, 503 ``client_upload_budget``),
and a body that goes ``upload_idle_timeout_s`` without a byte is answered 408 ``upload_stalled`` and
its bytes given back, instead of waiting for the whole request's ``timeout_s``.

A multipart body that ends without its closing boundary (a truncated upload) is told apart from
one that lacks the ``file`` field: Starlette parses both into a form without the file.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request

from cracksam.service.problems import ApiError

SPOOL_BYTES = 1 << 20  # an upload beyond 1 MiB goes to disk
_TAIL = 512  # bytes of a multipart body kept to find its closing boundary (epilogues are rare and short)

#: Raw-body content types accepted besides ``image/*`` (and a missing Content-Type).  The form type
#: is what ``curl --data-binary @photo.jpg`` sends by default; its body is taken as the image bytes.
RAW_TYPES = frozenset({"application/octet-stream", "application/x-www-form-urlencoded"})
#: ``image/*`` types that are not raster images and are refused with 415.
NOT_RASTER = frozenset({"image/svg+xml"})


class Budget:
    """A count of units (bytes, pixels) shared by concurrent requests; ``take`` never waits."""

    def __init__(self, total: int, unit: str) -> None:
        self.total = total
        self.unit = unit
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    def take(self, amount: int) -> bool:
        with self._lock:
            if self._used + amount > self.total:
                return False
            self._used += amount
            return True

    def give(self, amount: int) -> None:
        with self._lock:
            self._used = max(0, self._used - amount)


class ClientBudgets:
    """Upload bytes in flight per client address, each capped at ``per_client``; ``take`` never waits.
    An address is forgotten when it holds nothing, so the table stays as small as the clients uploading."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self._used: dict[str, int] = {}
        self._lock = threading.Lock()

    def used(self, client: str) -> int:
        return self._used.get(client, 0)

    def take(self, client: str, amount: int) -> bool:
        with self._lock:
            used = self._used.get(client, 0)
            if used + amount > self.per_client:
                return False
            self._used[client] = used + amount
            return True

    def give(self, client: str, amount: int) -> None:
        with self._lock:
            left = self._used.get(client, 0) - amount
            if left > 0:
                self._used[client] = left
            else:
                self._used.pop(client, None)


@dataclass
class Upload:
    """An upload as received: a readable file (positioned at 0), its size and a name for messages."""

    file: IO[bytes]
    size: int
    name: str
    _budget: Budget | None = None
    _held: int = 0
    _closers: list[Any] = field(default_factory=list)
    _clients: ClientBudgets | None = None
    _client: str = "unknown"

    def hold(self, amount: int) -> None:
        """Count ``amount`` more bytes against the client's share and the shared budget, or answer 503."""
        if self._budget is None or amount <= 0:
            return
        clients = self._clients
        if clients is not None and not clients.take(self._client, amount):
            raise ApiError(503, "client_upload_budget",
                           f"this client ({self._client}) is sending {clients.used(self._client)} bytes of uploads "
                           f"already (limit {clients.per_client} bytes in flight per client); retry when they are "
                           "done", headers={"Retry-After": "2"})
        if not self._budget.take(amount):
            if clients is not None:
                clients.give(self._client, amount)
            raise ApiError(503, "upload_budget",
                           f"the service is receiving {self._budget.used} bytes of uploads already (limit "
                           f"{self._budget.total} bytes in flight); retry shortly", headers={"Retry-After": "2"})
        self._held += amount

    def close(self) -> None:
        """Free the temporary file and the budget (idempotent)."""
        for closer in self._closers:
            try:
                closer()
            except OSError:  # pragma: no cover - closing a temporary file
                pass
        self._closers.clear()
        if self._budget is not None and self._held:
            self._budget.give(self._held)
            if self._clients is not None:
                self._clients.give(self._client, self._held)
            self._held = 0


def upload_display_name(filename: str | None) -> str:
    """An upload's file name for messages: the last path part, printable, short.  Never opened."""
    if not filename:
        return "upload"
    name = PurePosixPath(filename.replace("\\", "/")).name
    name = "".join(c for c in name if c.isprintable())[:100]
    return name or "upload"


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:  # BodySizeLimit answered it already; kept for direct callers
        return None


def stalled(idle_timeout_s: float) -> ApiError:
    return ApiError(408, "upload_stalled", f"no byte of the upload arrived for {idle_timeout_s:g} s; send it again",
                    headers={"Connection": "close"})


async def read_upload(request: Request, budget: Budget | None, log: Any, *, clients: ClientBudgets | None = None,
                      idle_timeout_s: float | None = None) -> Upload:
    """The image of a request, spooled; the caller must :meth:`Upload.close` it (also on errors).

    ``clients``: the per-address shares (the address is the peer's, ``request.client``);
    ``idle_timeout_s``: the longest wait for the next piece of the body (None: no limit)."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    multipart = media == "multipart/form-data"
    if not multipart and not (media in RAW_TYPES or not media or (media.startswith("image/")
                                                                   and media not in NOT_RASTER)):
        raise ApiError(415, "unsupported_media_type",
                       f"Content-Type {media!r} is not accepted; send an image as multipart/form-data (field "
                       "'file') or as the raw body with an image/* or application/octet-stream Content-Type")
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed by Upload
    upload = Upload(spool, 0, "upload", budget, _clients=clients,
                    _client=request.client.host if request.client else "unknown")
    upload._closers.append(spool.close)
    try:
        declared = _declared_length(request)
        if declared is not None:
            upload.hold(declared)  # the whole body is accounted for before a byte of it is read
        tail = bytearray()
        received = 0

        async def counted_receive() -> Any:
            nonlocal received
            try:
                message = await asyncio.wait_for(request.receive(), idle_timeout_s)
            except asyncio.TimeoutError:
                raise stalled(idle_timeout_s or 0) from None
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if declared is None:  # chunked: counted as it arrives (h11 enforces a declared length)
                    upload.hold(len(chunk))
                if multipart:
                    tail.extend(chunk)
                    del tail[:-_TAIL]
            return message

        if multipart:
            form = await _read_form(Request(request.scope, counted_receive), log)
            upload._closers.append(lambda: _close_form(form))
            _check_complete(content_type, bytes(tail))  # before "no file field": a cut body lacks it too
            upload.file, upload.name = _form_file(form)
        else:
            try:
                async for chunk in Request(request.scope, counted_receive).stream():
                    spool.write(chunk)
            except ClientDisconnect:
                raise _gone() from None
            spool.seek(0)
        upload.size = received if not multipart else _size(upload.file)
        return upload
    except BaseException:
        upload.close()
        raise


async def _read_form(request: Request, log: Any) -> Any:
    try:
        form = await request.form(max_files=1, max_fields=16)
    except (ApiError, StarletteHTTPException):
        raise
    except ClientDisconnect:
        raise _gone() from None
    except Exception as exc:  # malformed multipart: python-multipart/starlette raise various types
        log.info("bad multipart body: %s: %s", type(exc).__name__, exc)
        raise ApiError(400, "bad_multipart", f"cannot parse the multipart body ({type(exc).__name__}: {exc})") from None
    return form


def _gone() -> ApiError:
    return ApiError(400, "client_disconnected", "the client closed the connection during the upload")


def _form_file(form: Any) -> tuple[IO[bytes], str]:
    item = form.get("file")
    if item is None:
        raise ApiError(422, "missing_file", "a multipart upload needs the image in a field named 'file'")
    if isinstance(item, str):
        raise ApiError(422, "missing_file", "the 'file' field must be a file upload, not a text field")
    item.file.seek(0)
    return item.file, upload_display_name(item.filename)


def _close_form(form: Any) -> None:
    for _key, value in form.multi_items():
        if hasattr(value, "file"):
            value.file.close()


def _check_complete(content_type: str, tail: bytes) -> None:
    """400 when a multipart body ended before its closing ``--boundary--`` (cut off in transit)."""
    boundary = ""
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip().strip('"')
    if boundary and f"--{boundary}--".encode() not in tail:
        raise ApiError(400, "truncated_multipart",
                       "the multipart body ends before its closing boundary (the upload was cut off); send it again")


def _size(file: IO[bytes]) -> int:
    position = file.tell()
    file.seek(0, 2)
    size = file.tell()
    file.seek(position)
    return size
