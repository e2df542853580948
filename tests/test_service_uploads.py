"""Per-client upload budgets: one client's stalled uploads neither hold the
whole in-flight budget nor hold their share for long.  A real uvicorn server, raw sockets for the
stalled client (127.0.0.1) and httpx from another address (127.0.0.2) for the other client."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import time

import httpx
import numpy as np
import pytest
from PIL import Image
from starlette.requests import Request

from cracksam.errors import ConfigError
from cracksam.inference.predictor import Predictor
from cracksam.service.app import create_app
from cracksam.service.problems import ApiError
from cracksam.service.server import ThreadedServer
from cracksam.service.settings import MIB, ServiceSettings
from cracksam.service.uploads import Budget, ClientBudgets, Upload, read_upload

from .test_service_clients import PNG, CountingBackend, _can_bind

STALLED = 900 * 1024  # declared by each stalled upload: four of them would fill 3.5 of the 4 MiB budget
IDLE_S = 1.5


def _noise_png(side: int = 480) -> bytes:
    """An incompressible PNG (~690 KB): more than what four stalled uploads would leave of the budget."""
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def _stall(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                 f"Content-Length: {STALLED}\r\n\r\n".encode())  # ... and not a byte of the body
    return sock


def _answer(sock: socket.socket, t0: float, out: list[tuple[float, bytes]]) -> None:
    try:
        data = sock.recv(65536)
    except OSError:
        data = b""
    out.append((time.monotonic() - t0, data))


@pytest.mark.skipif(not _can_bind("127.0.0.2"), reason="127.0.0.2 is not a local address here")
def test_one_clients_stalled_uploads_neither_lock_out_another_client_nor_hold_their_share_long():
    settings = ServiceSettings(max_upload_mb=1.0, max_inflight_upload_mb=4.0, client_upload_share=0.25,
                               upload_idle_timeout_s=IDLE_S, header_timeout_s=30)
    app = create_app(settings, predictor=Predictor(CountingBackend()))
    photo = _noise_png()
    assert 600_000 < len(photo) < MIB
    with ThreadedServer(app, settings=settings) as server:
        state = app.state.service
        t0 = time.monotonic()
        stalled = [_stall(server.port) for _ in range(6)]
        answers: list[tuple[float, bytes]] = []
        readers = [threading.Thread(target=_answer, args=(s, t0, answers)) for s in stalled]
        for reader in readers:
            reader.start()
        deadline = time.monotonic() + 5
        while len(answers) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        # One stalled upload holds its share (all a client may hold); the other five were refused at once.
        assert state.uploads.used == STALLED and state.client_uploads.used("127.0.0.1") == STALLED
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30) as other:
            r = other.post(f"http://127.0.0.1:{server.port}/v1/segment", content=photo,
                           headers={"content-type": "image/png"})
            assert r.status_code == 200, r.text  # answered while the stalled upload is still held
            assert state.uploads.used == STALLED
        for reader in readers:
            reader.join(10)
        for s in stalled:
            s.close()
    refused = [(t, a) for t, a in answers if a.startswith(b"HTTP/1.1 503")]
    freed = [(t, a) for t, a in answers if a.startswith(b"HTTP/1.1 408")]
    assert len(refused) == 5 and all(b"client_upload_budget" in a and b"127.0.0.1" in a for _t, a in refused)
    assert len(freed) == 1 and b'"error":"upload_stalled"' in freed[0][1] and b"application/json" in freed[0][1]
    assert IDLE_S - 0.1 < freed[0][0] < IDLE_S + 3  # the idle timeout, not the request's 60 s
    assert state.uploads.used == 0 and state.client_uploads.used("127.0.0.1") == 0
    assert state.client_uploads._used == {}  # a client that holds nothing is forgotten


def test_a_slow_but_steady_upload_is_not_cut_off():
    """The idle timeout is per piece of the body, not for the whole body."""
    settings = ServiceSettings(upload_idle_timeout_s=0.8)
    app = create_app(settings, predictor=Predictor(CountingBackend()))
    pieces = [PNG[k * len(PNG) // 4:(k + 1) * len(PNG) // 4] for k in range(4)]
    with ThreadedServer(app, settings=settings) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"POST /v1/segment?format=json HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                     f"Content-Length: {len(PNG)}\r\n\r\n".encode())
        for piece in pieces:  # 4 x 0.5 s: 2 s in all, longer than the 0.8 s idle timeout
            time.sleep(0.5)
            sock.sendall(piece)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


def test_a_client_over_its_share_gets_503_and_the_global_refusal_gives_the_share_back():
    budget, clients = Budget(1000, "bytes"), ClientBudgets(600)

    def upload(client: str) -> Upload:
        return Upload(io.BytesIO(), 0, "u", budget, _clients=clients, _client=client)

    a1, a2, b = upload("a"), upload("a"), upload("b")
    a1.hold(500)
    with pytest.raises(ApiError) as err:
        a2.hold(200)  # 700 > 600 for client a, though the service has room
    assert err.value.status == 503 and err.value.error == "client_upload_budget"
    assert err.value.headers == {"Retry-After": "2"} and "600 bytes in flight per client" in str(err.value.detail)
    b.hold(400)
    with pytest.raises(ApiError) as err:
        b.hold(200)  # b's share has room (600) but the service does not (1100 > 1000)
    assert err.value.error == "upload_budget"
    assert clients.used("b") == 400 and budget.used == 900
    a1.close()
    b.close()
    assert budget.used == 0 and clients.used("a") == clients.used("b") == 0


def test_a_stalled_body_is_answered_408_by_read_upload():
    async def never():
        await asyncio.sleep(5)  # a mutant without the idle timeout fails here, not after a minute

    scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"", "client": ("10.0.0.9", 1),
             "headers": [(b"content-type", b"image/png"), (b"content-length", b"100")]}
    budget, clients = Budget(1000, "bytes"), ClientBudgets(500)

    async def go():
        t0 = time.monotonic()
        with pytest.raises(ApiError) as err:
            await read_upload(Request(scope, never), budget, None, clients=clients, idle_timeout_s=0.2)
        assert time.monotonic() - t0 < 2
        return err.value

    err = asyncio.run(go())
    assert err.status == 408 and err.error == "upload_stalled" and err.headers == {"Connection": "close"}
    assert budget.used == 0 and clients.used("10.0.0.9") == 0


def test_client_share_and_idle_timeout_settings():
    assert ServiceSettings().client_upload_bytes == 64 * MIB  # a quarter of the default 256 MiB
    assert ServiceSettings(max_upload_mb=100).client_upload_bytes == 100 * MIB  # one upload at the limit fits
    assert ServiceSettings(client_upload_share=1.0).client_upload_bytes == ServiceSettings().inflight_upload_bytes
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="client upload share"):
            ServiceSettings(client_upload_share=bad).validated()
    for bad in (0.0, float("inf")):
        with pytest.raises(ConfigError, match="upload idle timeout"):
            ServiceSettings(upload_idle_timeout_s=bad).validated()
    env = ServiceSettings.from_env({"CRACKSAM_CLIENT_UPLOAD_SHARE": "0.5", "CRACKSAM_UPLOAD_IDLE_TIMEOUT_S": "2"})
    assert env.client_upload_share == 0.5 and env.upload_idle_timeout_s == 2.0


def test_the_model_card_states_the_per_client_limits():
    settings = ServiceSettings(upload_idle_timeout_s=3.0)
    app = create_app(settings, predictor=Predictor(CountingBackend()))
    with ThreadedServer(app, settings=settings) as server:
        limits = httpx.get(server.url + "/v1/model").json()["limits"]
    assert limits["max_client_inflight_upload_bytes"] == 64 * MIB and limits["upload_idle_timeout_s"] == 3.0
