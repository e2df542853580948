"""The HTTP service (``cracksam serve``): a real uvicorn server on a loopback port, real HTTP."""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image

from cracksam.data.rle import decode_rle
from cracksam.errors import ConfigError
from cracksam.inference.backends import OpenVINOBackend, TorchBackend
from cracksam.inference.predictor import Predictor
from cracksam.inspection import inspect_mask, inspection_to_dict
from cracksam.models import CrackSAMConfig, DeltaConfig, build_cracksam, export_full
from cracksam.service.app import create_app
from cracksam.service.served_model import LoadedModel, LockedBackend, ThreadLocalOpenVINO, thread_safe
from cracksam.service.server import ThreadedServer
from cracksam.service.settings import ServiceSettings

from ._models import DarknessModel

# -- images -------------------------------------------------------------------------------------


def crack_rgb(h: int = 80, w: int = 120, seed: int = 0) -> np.ndarray:
    """A light surface with one dark line; ``seed`` moves the line so images differ."""
    img = np.full((h, w, 3), 210, np.uint8)
    rng = np.random.default_rng(seed)
    y0, y1 = (int(v) for v in rng.integers(5, h - 5, 2))
    cv2.line(img, (0, y0), (w - 1, y1), (15, 15, 15), int(rng.integers(2, 7)))
    return img


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def awkward_uploads() -> dict[str, tuple[bytes, tuple[int, int] | int]]:
    """The awkward files of the predict tests, in memory: name -> (bytes, mask size or 4xx status)."""
    rgb = crack_rgb()
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated by 90 degrees: the mask follows the displayed orientation
    png = encode(Image.fromarray(rgb), "PNG")
    return {
        "gray.png": (encode(Image.fromarray(rgb[:, :, 0]).convert("L"), "PNG"), (80, 120)),
        "rgba.png": (encode(Image.fromarray(rgb).convert("RGBA"), "PNG"), (80, 120)),
        "palette.bmp": (encode(Image.fromarray(rgb).convert("P"), "BMP"), (80, 120)),
        "deep16.png": (encode(Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257), "PNG"), (80, 120)),
        "cmyk.jpg": (encode(Image.fromarray(rgb).convert("CMYK"), "JPEG"), (80, 120)),
        "rotated.jpg": (encode(Image.fromarray(rgb), "JPEG", exif=exif), (120, 80)),
        "webp.webp": (encode(Image.fromarray(rgb), "WEBP"), (80, 120)),
        "tiff.tif": (encode(Image.fromarray(rgb), "TIFF"), (80, 120)),
        "one.png": (encode(Image.fromarray(np.zeros((1, 1, 3), np.uint8)), "PNG"), (1, 1)),
        "wide.png": (encode(Image.fromarray(np.full((3, 3000, 3), 128, np.uint8)), "PNG"), (3, 3000)),
        "truncated.png": (png[: len(png) // 2], 422),
        "empty.jpg": (b"", 400),
        "notes.png": (b"this is not an image", 422),
        "huge.png": (encode(Image.fromarray(np.zeros((300, 400, 3), np.uint8)), "PNG"), 413),  # > MAX_PIXELS
    }


MAX_PIXELS = 100_000
UPLOAD_MB = 1.0


# -- servers ------------------------------------------------------------------------------------


def dark_predictor(**kw) -> Predictor:
    return Predictor(TorchBackend(DarknessModel(64)), **kw)


def wait_healthy(url: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(url + "/health")
        if r.status_code == 200:
            return r.json()
        time.sleep(0.05)
    raise AssertionError(f"{url} not healthy after {timeout} s: {r.status_code} {r.text}")


@pytest.fixture(scope="module")
def dark_server() -> Iterator[ThreadedServer]:
    """The darkness model (dark pixels are cracks: masks depend on each image) served directly."""
    settings = ServiceSettings(max_pixels=MAX_PIXELS, workers=4, max_upload_mb=UPLOAD_MB)
    with ThreadedServer(create_app(settings, predictor=dark_predictor())) as server:
        yield server


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory) -> Path:
    model = build_cracksam(CrackSAMConfig(backbone="tiny", image_size=64, delta=DeltaConfig(kind="full")))
    return export_full(model, tmp_path_factory.mktemp("service") / "tiny_full")


@pytest.fixture(scope="module")
def tiny_server(tiny_export) -> Iterator[ThreadedServer]:
    """A tiny CrackSAM checkpoint folder loaded by the service itself (lifespan loader)."""
    with ThreadedServer(create_app(ServiceSettings(model=str(tiny_export)))) as server:
        wait_healthy(server.url)
        yield server


def post_image(url: str, data: bytes, name: str = "image.png", query: str = "", raw: bool = False,
               **kw) -> httpx.Response:
    if raw:
        return httpx.post(f"{url}/v1/segment{query}", content=data,
                          headers={"Content-Type": "application/octet-stream", **kw.pop("headers", {})}, **kw)
    return httpx.post(f"{url}/v1/segment{query}", files={"file": (name, data, "application/octet-stream")}, **kw)


def png_mask(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    mask = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert mask.ndim == 2 and set(np.unique(mask)) <= {0, 255}
    return mask > 0


def assert_error(response: httpx.Response, status: int, error: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail"} and body["detail"], body
    if error is not None:
        assert body["error"] == error, body
    return body


# -- segmenting -----------------------------------------------------------------------------------


def test_masks_match_the_predictor_as_png_and_json(tiny_server, tiny_export):
    image = crack_rgb(90, 130)
    data = encode(Image.fromarray(image), "PNG")
    expected = Predictor.from_path(tiny_export).predict_one(image).mask()

    as_png = png_mask(post_image(tiny_server.url, data, query="?format=png"))
    assert as_png.shape == (90, 130)
    np.testing.assert_array_equal(as_png, expected)

    r = post_image(tiny_server.url, data, raw=True)  # JSON and RLE by default
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    assert (doc["width"], doc["height"]) == (130, 90)
    assert doc["mask"]["encoding"] == "rle" and doc["mask"]["order"] == "column-major"
    np.testing.assert_array_equal(decode_rle(doc["mask"]), expected)
    assert doc["crack_pixels"] == int(expected.sum())
    assert doc["crack_fraction"] == pytest.approx(expected.mean())
    assert doc["model_id"] == httpx.get(tiny_server.url + "/health").json()["model_id"]
    assert doc["model_id"].startswith("tiny_full-")
    assert set(doc["timing_ms"]) >= {"decode_ms", "inference_ms", "total_ms"}

    as_b64 = post_image(tiny_server.url, data, query="?mask=png").json()["mask"]
    decoded = cv2.imdecode(np.frombuffer(base64.b64decode(as_b64["data"]), np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(decoded > 0, expected)
    assert "mask" not in post_image(tiny_server.url, data, query="?mask=none").json()


def test_model_card_health_and_openapi(tiny_server):
    card = httpx.get(tiny_server.url + "/v1/model").json()
    assert card["id"] == httpx.get(tiny_server.url + "/health").json()["model_id"]
    assert card["runtime"] == "torch" and card["image_size"] == 64 and card["backbone"] == "tiny"
    assert card["delta"] and card["mode"] == "resize" and card["threshold"] == 0.5
    assert card["limits"]["max_pixels"] == ServiceSettings().max_pixels
    assert httpx.get(tiny_server.url + "/health").json()["status"] == "ok"
    schema = httpx.get(tiny_server.url + "/openapi.json").json()
    assert "post" in schema["paths"]["/v1/segment"]
    assert {"/health", "/v1/model"} <= set(schema["paths"])
    body = schema["paths"]["/v1/segment"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/*"} <= set(body)
    docs = httpx.get(tiny_server.url + "/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_accept_header_chooses_png_or_json(dark_server):
    data = encode(Image.fromarray(crack_rgb()), "PNG")
    for accept, kind in [("image/png", "image/png"), ("application/json", "application/json"),
                         ("*/*", "application/json"), ("image/*", "image/png"),
                         ("application/json;q=0.5, image/png", "image/png")]:
        r = post_image(dark_server.url, data, headers={"Accept": accept})
        assert r.status_code == 200 and r.headers["content-type"] == kind, accept
    assert_error(post_image(dark_server.url, data, headers={"Accept": "text/html"}), 406, "not_acceptable")
    # ?format= wins over Accept
    assert post_image(dark_server.url, data, query="?format=json",
                      headers={"Accept": "image/png"}).headers["content-type"] == "application/json"


def test_awkward_and_invalid_uploads_get_a_mask_or_a_4xx(dark_server):
    direct = dark_predictor()
    for name, (data, expect) in awkward_uploads().items():
        for raw in (False, True):
            r = post_image(dark_server.url, data, name=name, raw=raw, query="?format=png")
            assert r.status_code < 500, (name, r.status_code, r.text)
            if isinstance(expect, tuple):
                mask = png_mask(r)
                assert mask.shape == expect, name
                if name in ("cmyk.jpg", "rotated.jpg", "webp.webp", "tiff.tif", "gray.png"):
                    assert mask.any(), name  # the dark line is found whatever the encoding
            else:
                body = assert_error(r, expect)
                assert body["error"] in {"empty_body", "not_an_image", "corrupt_image", "image_too_large"}
                if not raw and name != "empty.jpg":
                    assert name in body["detail"]  # the upload's file name names the problem
    # The rotated JPEG's mask is the displayed image's, identical to segmenting it directly.
    jpeg = awkward_uploads()["rotated.jpg"][0]
    rotated = np.asarray(Image.open(io.BytesIO(jpeg)).transpose(Image.Transpose.ROTATE_270))
    got = png_mask(post_image(dark_server.url, jpeg, query="?format=png"))
    np.testing.assert_array_equal(got, direct.predict_one(np.ascontiguousarray(rotated)).mask())
    assert httpx.get(dark_server.url + "/health").status_code == 200


def test_bad_requests_are_named_4xx_json(dark_server):
    url = dark_server.url
    good = encode(Image.fromarray(crack_rgb()), "PNG")
    for ctype in ("text/plain", "application/json", "image/svg+xml"):
        assert_error(httpx.post(url + "/v1/segment", content=good, headers={"Content-Type": ctype}),
                     415, "unsupported_media_type")
    for query, parameter in [("?format=xml", "format"), ("?mask=jpeg", "mask"), ("?mm_per_px=-1", "mm_per_px"),
                             ("?mm_per_px=nan", "mm_per_px"), ("?threshold=1.5", "threshold"),
                             ("?min_length_px=-3", "min_length_px"), ("?measure=maybe", "measure"),
                             ("?format=png&measure=true", "measure")]:
        body = assert_error(post_image(url, good, query=query), 422, "invalid_query")
        assert body["detail"][0]["parameter"] == parameter, (query, body)
    assert_error(httpx.post(url + "/v1/segment", files={"photo": ("a.png", good)}), 422, "missing_file")
    assert_error(httpx.post(url + "/v1/segment", data={"file": "a.png"}, files={"other": ("b", b"x")}),
                 422, "missing_file")
    assert_error(httpx.post(url + "/v1/segment", content=good, headers={"Content-Type": "multipart/form-data"}),
                 400)
    two_files = [("file", ("a.png", good)), ("file", ("b.png", good))]
    assert_error(httpx.post(url + "/v1/segment", files=two_files), 400)
    assert_error(httpx.get(url + "/v1/segment"), 405, "method_not_allowed")
    assert_error(httpx.get(url + "/no/such/page"), 404, "not_found")
    assert_error(httpx.post(url + "/v1/segment", content=b""), 400, "empty_body")
    assert httpx.get(url + "/health").status_code == 200


def test_concurrent_requests_give_the_same_masks_as_sequential_ones(dark_server):
    images = [crack_rgb(60 + 7 * i, 90 + 11 * i, seed=i) for i in range(6)]
    uploads = [encode(Image.fromarray(img), "PNG") for img in images]
    sequential = [png_mask(post_image(dark_server.url, data, query="?format=png")) for data in uploads]
    assert len({m.tobytes() for m in sequential}) == len(images)  # each image has its own mask

    def client(k: int) -> list[tuple[int, np.ndarray]]:
        out = []
        with httpx.Client(base_url=dark_server.url, timeout=60) as c:
            for j in range(4):
                i = (k + j) % len(images)
                r = c.post("/v1/segment?format=json&mask=rle", files={"file": (f"{i}.png", uploads[i])})
                assert r.status_code == 200, r.text
                out.append((i, decode_rle(r.json()["mask"])))
        return out

    with ThreadPoolExecutor(8) as pool:
        results = [item for chunk in pool.map(client, range(8)) for item in chunk]
    assert len(results) == 32
    for i, mask in results:
        np.testing.assert_array_equal(mask, sequential[i])


def _raw_http(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send bytes on a fresh connection and read the answer (the server closes after a 413)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head + body)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b"}" in chunk:
                break
    return b"".join(chunks)


def test_upload_and_pixel_limits_give_413(dark_server):
    limit = ServiceSettings(max_upload_mb=UPLOAD_MB).max_upload_bytes
    # Declared too large: refused from the header, before the body is read (none is sent here).
    answer = _raw_http(dark_server.port, b"POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                                         b"Content-Length: 1000000000\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "payload_too_large"

    # No Content-Length (chunked): counted while it streams in, and cut off.  (Only a little over
    # the limit: the server closes the connection after a 413 and unread bytes would reset it.)
    def chunks() -> Iterator[bytes]:
        for _ in range(limit // 65536 + 1):
            yield b"\0" * 65536

    r = httpx.post(dark_server.url + "/v1/segment", content=chunks(), headers={"Content-Type": "image/png"})
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "payload_too_large")
    # Small file, too many pixels: refused from the image header.
    bomb = encode(Image.new("L", (4000, 4000)), "PNG")
    assert len(bomb) < 100_000
    body = assert_error(post_image(dark_server.url, bomb, name="bomb.png"), 413, "image_too_large")
    assert "pixels" in body["detail"]
    assert httpx.get(dark_server.url + "/health").status_code == 200


def test_measure_returns_the_figures_of_measure_mask(dark_server):
    image = crack_rgb(120, 200, seed=3)
    data = encode(Image.fromarray(image), "PNG")
    r = post_image(dark_server.url, data, name="road.png", query="?mask=png&mm_per_px=0.5", timeout=120)
    assert r.status_code == 200, r.text
    doc = r.json()
    mask = cv2.imdecode(np.frombuffer(base64.b64decode(doc["mask"]["data"]), np.uint8), cv2.IMREAD_UNCHANGED) > 0
    expected = inspection_to_dict(inspect_mask(mask, mm_per_px=0.5), source="road.png")  # measurement + types
    assert doc["measurement"] == json.loads(json.dumps(expected))
    assert doc["measurement"]["totals"]["n_cracks"] == 1 and doc["measurement"]["mm_per_px"] == 0.5
    assert len(doc["measurement"]["cracks"]) == 1
    plain = post_image(dark_server.url, data, query="?measure=true&min_length_px=0", timeout=120).json()
    assert plain["measurement"]["mm_per_px"] is None and plain["measurement"]["min_length_px"] == 0
    assert "measurement" not in post_image(dark_server.url, data).json()


# -- model loading, timeouts ----------------------------------------------------------------------


def test_health_is_503_until_the_model_is_loaded():
    release = threading.Event()

    def slow_loader() -> LoadedModel:
        assert release.wait(30)
        return LoadedModel(dark_predictor(), "slow-model")

    with ThreadedServer(create_app(ServiceSettings(), loader=slow_loader)) as server:
        r = httpx.get(server.url + "/health")
        assert r.status_code == 503 and r.json()["status"] == "loading"
        data = encode(Image.fromarray(crack_rgb()), "PNG")
        assert_error(post_image(server.url, data), 503, "model_not_ready")
        assert_error(httpx.get(server.url + "/v1/model"), 503, "model_not_ready")
        release.set()
        assert wait_healthy(server.url)["model_id"] == "slow-model"
        assert post_image(server.url, data).status_code == 200

    failures: list[BaseException] = []

    def broken_loader() -> LoadedModel:
        raise ConfigError("no such model: test")

    app = create_app(ServiceSettings(), loader=broken_loader, on_load_error=failures.append)
    with ThreadedServer(app) as server:
        deadline = time.monotonic() + 10
        while not failures and time.monotonic() < deadline:
            time.sleep(0.02)
        r = httpx.get(server.url + "/health")
        assert r.status_code == 503 and r.json() == {"status": "error", "detail": "no such model: test"}
    assert isinstance(failures[0], ConfigError)


class SlowBackend:
    name, precision, image_size = "slow", "fp32", 64

    def run(self, x: np.ndarray) -> np.ndarray:
        time.sleep(1.0)
        return np.zeros((x.shape[0], 2, 64, 64), np.float32)


def test_a_slow_request_times_out_with_504_and_the_server_stays_up():
    app = create_app(ServiceSettings(timeout_s=0.3, workers=1, max_pending=0), predictor=Predictor(SlowBackend()))
    data = encode(Image.fromarray(crack_rgb()), "PNG")
    with ThreadedServer(app) as server:
        assert_error(post_image(server.url, data), 504, "timeout")
        # The timed-out job still holds the only worker in its forward pass (threads cannot be killed):
        # busy, not queued.  (Had it not reached the forward pass yet, it is skipped -- the client is
        # gone -- and this request times out in turn.)
        r = post_image(server.url, data)
        assert r.status_code in (503, 504), r.text
        if r.status_code == 503:
            assert_error(r, 503, "busy")
            assert r.headers["retry-after"] == "1"
        assert httpx.get(server.url + "/health").status_code == 200
        time.sleep(1.0)  # the abandoned job ends and frees its slot
        assert_error(post_image(server.url, data), 504, "timeout")


def test_app_from_environment(monkeypatch):
    from cracksam.service.app import app_from_env

    monkeypatch.setenv("CRACKSAM_MAX_PIXELS", "1234")
    monkeypatch.setenv("CRACKSAM_MODEL", "/nowhere/model.onnx")
    assert app_from_env().state.service.settings.max_pixels == 1234


# -- pieces -----------------------------------------------------------------------------------------


def test_backends_are_made_safe_for_concurrent_calls(tmp_path):
    from cracksam.deployment.export import export_onnx

    torch_predictor = dark_predictor()
    assert thread_safe(torch_predictor) is torch_predictor  # safe as is
    custom = Predictor(SlowBackend())
    assert isinstance(thread_safe(custom).backend, LockedBackend)
    assert thread_safe(custom).describe()["runtime"] == "slow"

    onnx = export_onnx(DarknessModel(64), tmp_path / "dark.onnx")
    predictor = Predictor(OpenVINOBackend(onnx))  # OpenVINO reads ONNX files too
    safe = thread_safe(predictor)
    assert isinstance(safe.backend, ThreadLocalOpenVINO) and predictor.backend is not safe.backend
    assert safe.describe() == predictor.describe()
    images = [crack_rgb(64, 64, seed=i) for i in range(8)]
    expected = [predictor.predict_one(img).prob for img in images]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda k: safe.predict_one(images[k % 8]).prob, range(32)))
    for k, prob in enumerate(got):
        np.testing.assert_allclose(prob, expected[k % 8], atol=1e-5)


@pytest.fixture
def conv_model():
    """test_runtime_cache's toy fully convolutional network, unregistered afterwards (the zoo and
    registry tests list every registered network)."""
    from cracksam.models.registry import unregister_model
    from tests.test_runtime_cache import ARCH, conv_segmodel

    yield conv_segmodel()
    unregister_model(ARCH)


def test_openvino_in_the_service_runs_a_photo_at_its_own_size(tmp_path, conv_model):
    """The service's per-thread OpenVINO requests take a non-square, non-448 photo through a
    dynamic-shape export, as predict does (it once refused every shape but S×S)."""
    from cracksam.deployment.export import export_onnx, export_openvino

    model = conv_model
    onnx = export_onnx(model, tmp_path / "m.onnx", dynamic_shape=True)
    predictor = Predictor(OpenVINOBackend(export_openvino(onnx, tmp_path / "m.xml", fp16=False)))
    safe = thread_safe(predictor)
    assert isinstance(safe.backend, ThreadLocalOpenVINO) and safe.dynamic
    image = crack_rgb(120, 200, seed=5)
    served = safe.predict_one(image).prob
    reference = Predictor(TorchBackend(model)).predict_one(image).prob
    assert served.shape == (120, 200)
    np.testing.assert_allclose(served, reference, atol=1e-4)
    with pytest.raises(ValueError, match="multiples of 8"):
        safe.backend.run(np.zeros((1, 3, 60, 64), np.float32))


def test_settings_from_environment():
    env = {"CRACKSAM_PORT": "9001", "CRACKSAM_MAX_UPLOAD_MB": "1.5", "CRACKSAM_BACKEND": "cuda",
           "CRACKSAM_TIMEOUT_S": "2", "CRACKSAM_MODE": "tile", "CRACKSAM_THREADS": "3", "CRACKSAM_HOST": ""}
    s = ServiceSettings.from_env(env, workers=3)
    assert (s.port, s.device, s.timeout_s, s.mode, s.threads, s.workers) == (9001, "cuda", 2.0, "tile", 3, 3)
    assert s.max_upload_bytes == int(1.5 * 1024 * 1024) and s.host == "127.0.0.1"
    # Mode and scale default to the model's own (None); CRACKSAM_SCALE sets the scale.
    assert (ServiceSettings.from_env({}).mode, ServiceSettings.from_env({}).scale) == (None, None)
    assert ServiceSettings.from_env({"CRACKSAM_MODE": "native", "CRACKSAM_SCALE": "0.5"}).scale == 0.5
    for bad, needle in [({"CRACKSAM_PORT": "http"}, "CRACKSAM_PORT"), ({"CRACKSAM_MODE": "zoom"}, "mode"),
                        ({"CRACKSAM_SCALE": "0"}, "scale must be a number"),
                        ({"CRACKSAM_SCALE": "x"}, "CRACKSAM_SCALE"),
                        ({"CRACKSAM_MAX_PIXELS": "0"}, "max pixels"), ({"CRACKSAM_TIMEOUT_S": "-1"}, "timeout")]:
        with pytest.raises(ConfigError, match=needle):
            ServiceSettings.from_env(bad)


def test_serve_cli_reports_a_bad_model_without_a_traceback(tmp_path, capsys):
    from cracksam.cli.main import main

    assert main(["serve", "--model", str(tmp_path / "missing.onnx"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "missing.onnx" in err and "Traceback" not in err
    assert main(["serve", "--model", str(tmp_path), "--port", "0", "--mode", "zoom"]) == 2
    assert "mode" in capsys.readouterr().err
    # A file that exists but is no model: the server starts, the loader fails, the command stops.
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with restored_logging():  # uvicorn in the foreground configures logging onto the captured stderr
        rc = main(["serve", "--model", str(tmp_path / "bad.onnx"), "--port", "0", "--log-level", "critical"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "error: cannot serve" in err and "bad.onnx" in err and "Traceback" not in err


@contextmanager
def restored_logging() -> Iterator[None]:
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "cracksam.service"]
    saved = {n: (lg.handlers[:], lg.level, lg.propagate) for n in names for lg in [logging.getLogger(n)]}
    try:
        yield
    finally:
        for n, (handlers, level, propagate) in saved.items():
            lg = logging.getLogger(n)
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate


def test_decode_image_reads_bytes_as_read_image_reads_files(tmp_path):
    from cracksam.data.io import CorruptImageError, ImageTooLargeError, NotAnImageError, decode_image, read_image

    for name, (data, expect) in awkward_uploads().items():
        if isinstance(expect, tuple):
            (tmp_path / name).write_bytes(data)
            np.testing.assert_array_equal(decode_image(data, name=name), read_image(tmp_path / name), err_msg=name)
    uploads = awkward_uploads()
    with pytest.raises(CorruptImageError, match="truncated.png"):
        decode_image(uploads["truncated.png"][0], name="truncated.png")
    with pytest.raises(NotAnImageError, match="0 bytes"):
        decode_image(b"")
    with pytest.raises(NotAnImageError, match="cannot identify image file data"):
        decode_image(b"this is not an image")
    with pytest.raises(ImageTooLargeError, match="120000 pixels"):
        decode_image(uploads["huge.png"][0], max_pixels=MAX_PIXELS)
    with pytest.raises(NotAnImageError):  # a real image, but not in the formats allowed
        decode_image(uploads["tiff.tif"][0], formats=("PNG", "JPEG"))
