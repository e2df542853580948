"""The service under hostile or careless clients: gone clients, slow headers, abandoned uploads,
huge images, malformed requests.  Memory and connections stay bounded; every answer is JSON."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
import zlib

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from starlette.requests import Request

from cracksam.errors import ConfigError
from cracksam.inference.predictor import Predictor
from cracksam.service.app import create_app
from cracksam.service.problems import ApiError
from cracksam.service.served_model import Cancelled
from cracksam.service.server import ThreadedServer, uvicorn_config
from cracksam.service.settings import ServiceSettings
from cracksam.service.uploads import SPOOL_BYTES, Budget, read_upload

from .test_service import assert_error, crack_rgb, encode, post_image


class CountingBackend:
    """Counts forward passes; each takes ``delay`` s, or waits for ``gate`` when one is given."""

    name, precision, image_size = "counting", "fp32", 64

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.calls = 0
        self.delay = delay
        self.gate = gate
        self.entered = threading.Event()

    def run(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.delay)
        return np.zeros((x.shape[0], 2, *x.shape[2:]), np.float32)


PNG = encode(Image.fromarray(crack_rgb()), "PNG")


# -- clients that have gone ---------------------------------------------------------------------------


async def _call(app, body: bytes, disconnect_after: float | None) -> dict:
    """One ASGI request whose client disconnects ``disconnect_after`` s after sending the body
    (0: at once).  Returns the response start message (or {} when none was sent)."""
    sent_at: float | None = None
    start: dict = {}

    async def receive():
        nonlocal sent_at
        if sent_at is None:
            sent_at = time.monotonic()
            return {"type": "http.request", "body": body, "more_body": False}
        left = (disconnect_after or 0) - (time.monotonic() - sent_at)
        if left > 0:
            await asyncio.sleep(left)  # is_disconnected() cancels this wait: "still connected"
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            start.update(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/segment", "raw_path": b"/v1/segment", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"image/png"), (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
        runner = app.state.service.runner
        for _ in range(200):  # a stopped job finishes in the background: wait for its count
            if runner.active == 0:
                break
            await asyncio.sleep(0.05)
    return start


def test_a_request_whose_client_has_gone_is_not_computed():
    backend = CountingBackend()
    app = create_app(ServiceSettings(), predictor=Predictor(backend))
    start = asyncio.run(_call(app, PNG, disconnect_after=0))
    assert backend.calls == 0  # not one forward pass for a client that is not there
    assert start["status"] == 499
    assert app.state.service.skipped_before_start == 1


def test_a_job_stops_between_tiles_when_its_client_goes():
    backend = CountingBackend(delay=0.1)
    # 640x640 in 64-px tiles without overlap: 100 forward passes of 0.1 s if nobody stopped them.
    app = create_app(ServiceSettings(), predictor=Predictor(backend, mode="tile", tile_overlap=0.0, batch_size=1))
    big = encode(Image.fromarray(np.full((640, 640, 3), 200, np.uint8)), "PNG")
    t0 = time.perf_counter()
    start = asyncio.run(_call(app, big, disconnect_after=0.4))
    assert 1 <= backend.calls < 30, backend.calls
    assert start["status"] == 499
    assert app.state.service.runner.cancelled == 1
    assert time.perf_counter() - t0 < 8


def test_health_counts_skipped_jobs_and_answers_head():
    app = create_app(ServiceSettings(), predictor=Predictor(CountingBackend()))
    with TestClient(app) as client:
        head = client.head("/health")
        assert head.status_code == 200 and head.content == b""
        assert client.post("/v1/segment", content=PNG, headers={"content-type": "image/png"}).status_code == 200
        jobs = client.get("/health").json()["jobs"]
        assert jobs["done"] == 1 and jobs["skipped_client_gone"] == 0


# -- uploads: spooled, under one budget ---------------------------------------------------------------


def _request(chunks: list[bytes], headers: dict[str, str]) -> Request:
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw, "query_string": b""}, receive)


class _Log:
    def info(self, *args):
        pass


def test_a_raw_upload_is_spooled_to_disk_and_counted_against_the_budget():
    chunk = b"x" * (256 * 1024)
    budget = Budget(10 * SPOOL_BYTES, "bytes")

    async def go():
        upload = await read_upload(_request([chunk] * 12, {"content-type": "image/png"}), budget, _Log())
        try:
            assert upload.size == 12 * len(chunk)
            assert upload.file._rolled  # past SPOOL_BYTES the bytes are on disk, not in memory
            assert budget.used == 12 * len(chunk)  # chunked (no Content-Length): counted as it arrived
            assert upload.file.read() == chunk * 12
        finally:
            upload.close()
        assert budget.used == 0

    asyncio.run(go())


def test_an_upload_that_does_not_fit_the_budget_is_refused_before_its_body_is_read():
    budget = Budget(1000, "bytes")
    assert budget.take(600)

    async def go():
        with pytest.raises(ApiError) as err:
            await read_upload(_request([b"x" * 500], {"content-type": "image/png", "content-length": "500"}), budget,
                              _Log())
        assert err.value.status == 503 and err.value.headers == {"Retry-After": "2"}
        assert "1000 bytes in flight" in str(err.value.detail)

    asyncio.run(go())
    assert budget.used == 600  # the refused request gave back what it had not taken


def test_abandoned_uploads_hold_the_budget_and_later_ones_get_503_until_they_go():
    # All from one address: client_upload_share=1 leaves only the global budget (the per-client share
    # is tested in tests/test_service_uploads.py).
    settings = ServiceSettings(max_upload_mb=1.0, max_inflight_upload_mb=1.5, header_timeout_s=30,
                               client_upload_share=1.0)
    app = create_app(settings, predictor=Predictor(CountingBackend()))
    size = 900 * 1024
    with ThreadedServer(app, settings=settings) as server:
        stuck = socket.create_connection(("127.0.0.1", server.port))
        stuck.sendall(f"POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                      f"Content-Length: {size}\r\n\r\n".encode() + b"x" * 1000)  # then nothing more
        time.sleep(0.3)
        r = post_image(server.url, b"y" * size, raw=True)
        assert_error(r, 503, "upload_budget")
        assert r.headers["retry-after"] == "2"
        assert post_image(server.url, PNG).status_code == 200  # a small upload still fits beside it
        stuck.close()
        time.sleep(0.3)
        assert post_image(server.url, b"y" * size, raw=True).status_code == 422  # fits again (not an image)


# -- decoded pixels -----------------------------------------------------------------------------------


def test_the_decoded_pixel_budget_is_shared_by_concurrent_requests():
    gate = threading.Event()
    backend = CountingBackend(gate=gate)
    settings = ServiceSettings(max_pixels=100_000, max_inflight_pixels=100_000, workers=2)
    app = create_app(settings, predictor=Predictor(backend, mode="resize"))
    image = encode(Image.fromarray(np.full((300, 300, 3), 200, np.uint8)), "PNG")  # 90,000 pixels
    with ThreadedServer(app, settings=settings) as server, httpx.Client(timeout=30) as client:
        first: list[httpx.Response] = []
        worker = threading.Thread(target=lambda: first.append(
            client.post(server.url + "/v1/segment", content=image, headers={"content-type": "image/png"})))
        worker.start()
        assert backend.entered.wait(10)
        r = client.post(server.url + "/v1/segment", content=image, headers={"content-type": "image/png"})
        body = assert_error(r, 503, "pixel_budget")
        assert "100000 pixels in flight" in body["detail"] and r.headers["retry-after"] == "2"
        small = encode(Image.fromarray(crack_rgb(50, 50)), "PNG")  # 2,500 pixels still fit
        gate.set()
        worker.join(10)
        assert first[0].status_code == 200
        assert client.post(server.url + "/v1/segment", content=small,
                           headers={"content-type": "image/png"}).status_code == 200
        assert app.state.service.pixels.used == 0


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width x height`` (no pixel data): a cheap decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("width, height", [(1000, 1000), (20000, 10000)])  # ours, then over Pillow's own limit
def test_pixel_limit_messages_quote_the_services_limit(width, height):
    app = create_app(ServiceSettings(max_pixels=100_000), predictor=Predictor(CountingBackend()))
    with TestClient(app) as client:
        r = client.post("/v1/segment", content=_png_header_only(width, height), headers={"content-type": "image/png"})
    body = assert_error(r, 413, "image_too_large")
    assert f"{width * height} pixels" in body["detail"] and "limit 100000" in body["detail"]
    assert "178956970" not in body["detail"]


# -- malformed requests get JSON ----------------------------------------------------------------------


def test_a_truncated_multipart_body_is_named_as_such():
    app = create_app(ServiceSettings(), predictor=Predictor(CountingBackend()))
    head = (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n")
    with TestClient(app) as client:
        cut = client.post("/v1/segment", content=head + PNG[:100], headers={"content-type": "multipart/form-data; "
                                                                                               "boundary=B"})
        assert_error(cut, 400, "truncated_multipart")
        whole = client.post("/v1/segment", content=head + PNG + b"\r\n--B--\r\n",
                            headers={"content-type": "multipart/form-data; boundary=B"})
        assert whole.status_code == 200, whole.text
        other = (b"--B\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\n\r\n" + PNG
                 + b"\r\n--B--\r\n")
        assert_error(client.post("/v1/segment", content=other,
                                 headers={"content-type": "multipart/form-data; boundary=B"}), 422, "missing_file")


def _raw_exchange(port: int, data: bytes, wait: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except TimeoutError:
            pass
    return out


@pytest.fixture(scope="module")
def guarded_server():
    settings = ServiceSettings(header_timeout_s=0.6, max_connections=8, max_connections_per_client=3)
    with ThreadedServer(create_app(settings, predictor=Predictor(CountingBackend())), settings=settings) as server:
        yield server


def test_a_bad_content_length_gets_a_json_400(guarded_server):
    out = _raw_exchange(guarded_server.port, b"POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head
    assert b'"error": "bad_request"' in body


def test_slow_headers_are_cut_off_and_others_are_served_meanwhile(guarded_server):
    with socket.create_connection(("127.0.0.1", guarded_server.port), timeout=5) as slow:
        t0 = time.monotonic()
        slow.sendall(b"POST /v1/segment HTTP/1.1\r\nHost: x\r\n")  # ... and the rest never comes
        assert httpx.get(guarded_server.url + "/health").status_code == 200
        out = slow.recv(65536)
        assert out.startswith(b"HTTP/1.1 408") and b"header_timeout" in out
        assert 0.5 < time.monotonic() - t0 < 4  # the 0.6 s deadline, not uvicorn's keep-alive or never
        assert slow.recv(10) == b""  # and closed


def test_keep_alive_connections_get_a_header_deadline_per_request(guarded_server):
    with socket.create_connection(("127.0.0.1", guarded_server.port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /health HTTP/1.1\r\n")  # the second request's headers stall
        assert sock.recv(65536).startswith(b"HTTP/1.1 408")


def _can_bind(address: str) -> bool:
    try:
        with socket.socket() as s:
            s.bind((address, 0))
        return True
    except OSError:  # macOS has only 127.0.0.1 on loopback by default
        return False


@pytest.mark.skipif(not _can_bind("127.0.0.2"), reason="127.0.0.2 is not a local address here")
def test_connections_are_capped_per_client_and_other_clients_still_get_in(guarded_server):
    held = [socket.create_connection(("127.0.0.1", guarded_server.port)) for _ in range(3)]
    try:
        time.sleep(0.1)
        refused = _raw_exchange(guarded_server.port, b"")
        assert refused.startswith(b"HTTP/1.1 503") and b"too_many_connections" in refused
        other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        assert other.get(f"http://127.0.0.1:{guarded_server.port}/health").status_code == 200
        other.close()
    finally:
        for s in held:
            s.close()
    time.sleep(0.2)
    assert httpx.get(guarded_server.url + "/health").status_code == 200


def test_uvicorn_gets_the_limits():
    settings = ServiceSettings(max_connections=50, keep_alive_s=2.5)
    config = uvicorn_config(object(), settings=settings)
    assert config.limit_concurrency == 51 and config.timeout_keep_alive == 2.5
    assert config.http.__name__ == "GuardedH11Protocol"
    assert config.h11_max_incomplete_event_size == 16 * 1024


def test_budgets_below_the_per_request_limits_are_refused():
    with pytest.raises(ConfigError, match="max inflight pixels"):
        ServiceSettings(max_pixels=1000, max_inflight_pixels=999).validated()
    with pytest.raises(ConfigError, match="max inflight upload"):
        ServiceSettings(max_upload_mb=10, max_inflight_upload_mb=5).validated()
    assert ServiceSettings(max_pixels=10**8).inflight_pixels == 10**8  # default follows a larger limit
    assert ServiceSettings.from_env({"CRACKSAM_MAX_INFLIGHT_PIXELS": "70000000"}).inflight_pixels == 70_000_000


def test_segment_job_checks_for_cancellation_before_any_work():
    from cracksam.service.segment import SegmentOptions, segment_job
    from cracksam.service.served_model import LoadedModel, service_predictor

    backend = CountingBackend()
    model = LoadedModel(service_predictor(Predictor(backend)), "m")
    gone = threading.Event()
    gone.set()
    options = SegmentOptions("json", "none", False, None, 10.0, 0.5)
    with pytest.raises(Cancelled):
        segment_job(PNG, "a.png", options, model, ServiceSettings(), ("PNG",), 0.0, 0.0, cancel=gone)
    assert backend.calls == 0


class WideBackend(CountingBackend):
    """A dynamic-shape backend (any input size), like a conventional network in native mode."""

    dynamic, multiple = True, 32


def test_the_service_runs_one_large_window_per_forward_pass():
    from cracksam.service.served_model import service_predictor

    native = service_predictor(Predictor(WideBackend(), mode="native", batch_size=4, window=2048))
    assert native.batch_size == 1  # 4 x 2048^2 windows at once took ~5 GB for one 7000^2 photo
    assert service_predictor(Predictor(WideBackend(), mode="native", batch_size=4, window=1024)).batch_size == 4
    assert service_predictor(Predictor(CountingBackend(), mode="resize", batch_size=4)).batch_size == 4
