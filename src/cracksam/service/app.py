"""The HTTP service: ``POST /v1/segment`` and friends, built by :func:`create_app`.

Endpoints (OpenAPI at ``/openapi.json``, interactive docs at ``/docs``):

* ``POST /v1/segment`` -- an image as a multipart upload (field ``file``) or as the raw body
  (``Content-Type: image/...`` or ``application/octet-stream``).  Answers a PNG mask (0/255, the
  size of the image as displayed, EXIF orientation applied) or JSON, chosen by ``?format=`` or
  else the ``Accept`` header (JSON when both are acceptable).  The JSON carries the mask as RLE
  (see :mod:`cracksam.service.rle`: COCO uncompressed, column-major) or a base64 PNG
  (``?mask=png``), crack pixel count and fraction, image size, model id and timings;
  ``?measure=true`` (or ``?mm_per_px=``) adds the crack measurement of
  :mod:`cracksam.measurement` (totals and one entry per crack), each crack with its ``type`` and
  ``severity`` (:mod:`cracksam.inspection`; ``?direction_deg=``, ``?severity=``).
* ``GET /health`` (and ``HEAD``) -- 200 ``{"status": "ok"}`` once the model is loaded, 503 before
  (or if loading failed), for readiness probes; with counts of the jobs done and skipped.
* ``GET /v1/model`` -- the model card (:meth:`Predictor.describe`), its id and the limits.
* ``GET /`` -- a small web page to try the service in a browser.

The model is loaded once, in a background thread started by the app's lifespan, so the server
answers (503) while a large model loads.  Decoding, inference and encoding run in a bounded
thread pool (:class:`~cracksam.service.inference.JobRunner`), so concurrent requests neither
block the event loop nor share mutable state (see :mod:`cracksam.service.inference`).  Each
request is its own forward pass: concurrent requests are not micro-batched (a possible later
optimisation; on CPU, parallel single-image calls already keep the cores busy).

Resources stay bounded whatever clients do: uploads are spooled to temporary files under a
byte budget shared by all requests (:mod:`cracksam.service.uploads`), decoded pixels in flight
under a pixel budget (503 with ``Retry-After`` past either), and a request whose client has gone
is skipped before its forward pass, or stopped between tiles (:class:`~cracksam.service.inference.
CancellableBackend`).  Connection-level limits are in :mod:`cracksam.service.protocol`.

No request names a file on the server: uploads are decoded from their spooled copy, and an
upload's file name is only echoed in messages.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image

from cracksam import __version__
from cracksam.errors import CrackSAMError
from cracksam.inference.predictor import Predictor
from cracksam.service.inference import (
    Busy,
    Cancelled,
    JobRunner,
    LoadedModel,
    load_model,
    model_id_for,
    service_predictor,
)
from cracksam.service.limits import BodySizeLimit
from cracksam.service.problems import ApiError, install_handlers
from cracksam.service.segment import Format, MaskEncoding, SegmentOptions, segment_job, warm_measurement
from cracksam.service.settings import ServiceSettings
from cracksam.service.uploads import Budget, read_upload

log = logging.getLogger("cracksam.service")

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Pillow formats the service decodes (fewer parsers exposed to untrusted bytes than Pillow's ~40).
#: JPEG covers MPO (multi-picture JPEGs from phones).
IMAGE_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", "PPM", "AVIF")

#: How often a request waiting for its job asks whether its client is still connected.
DISCONNECT_POLL_S = 0.1

SeverityName = Literal["astm-d6433", "concrete", "pixels"]  # inspection.SCHEMES; never a file in a request


_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {}},
    "required": ["error", "detail"],
}


def _error_doc(text: str) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {"schema": _ERROR_SCHEMA}}}


# -- state ------------------------------------------------------------------------------------


@dataclass
class ServiceState:
    """What the handlers share: the settings, the loaded model (or why there is none) and the pool."""

    settings: ServiceSettings
    runner: JobRunner | None = None
    model: LoadedModel | None = None
    status: Literal["loading", "ok", "error"] = "loading"
    load_error: str | None = None
    formats: tuple[str, ...] = field(default_factory=tuple)
    uploads: Budget | None = None  # upload bytes in flight, all requests together
    pixels: Budget | None = None  # decoded pixels in flight, all requests together
    skipped_before_start: int = 0  # requests whose client had gone before their job was queued

    def require_model(self) -> LoadedModel:
        if self.model is None or self.runner is None:
            detail = "the model is still loading" if self.status == "loading" else f"no model: {self.load_error}"
            raise ApiError(503, "model_not_ready", detail, headers={"Retry-After": "2"})
        return self.model


# -- request parsing --------------------------------------------------------------------------


def negotiate(fmt: Format | None, accept: str | None) -> Format:
    """``?format=`` if given, else the better of PNG and JSON for the ``Accept`` header (JSON on a
    tie, e.g. ``*/*`` or no header); 406 when the header accepts neither."""
    if fmt is not None:
        return fmt
    if not accept or not accept.strip():
        return "json"
    ranges: list[tuple[str, float]] = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
                q = q if math.isfinite(q) else 0.0
        if media:
            ranges.append((media.lower(), q))

    def quality(media: str) -> float:
        kind = media.split("/")[0] + "/*"
        for candidate in (media, kind, "*/*"):  # the most specific range that matches decides
            found = [q for m, q in ranges if m == candidate]
            if found:
                return max(found)
        return 0.0

    q_json, q_png = quality("application/json"), quality("image/png")
    if q_json <= 0 and q_png <= 0:
        raise ApiError(406, "not_acceptable", f"Accept: {accept!r} allows neither application/json nor image/png; "
                       "use ?format=json or ?format=png")
    return "png" if q_png > q_json else "json"


# -- the app ----------------------------------------------------------------------------------


def create_app(
    settings: ServiceSettings | None = None,
    predictor: Predictor | None = None,
    *,
    loader: Callable[[], LoadedModel] | None = None,
    on_load_error: Callable[[BaseException], None] | None = None,
) -> FastAPI:
    """The service as an ASGI app.

    Args:
        settings: limits and model options (default: :meth:`ServiceSettings.from_env`).
        predictor: a ready :class:`~cracksam.inference.predictor.Predictor` to serve (tests,
            embedding); made thread-safe, and its id derived from its model card unless
            ``settings.model_id`` names one.  None: the model of ``settings`` is loaded.
        loader: how to load the model when ``predictor`` is None (default:
            :func:`~cracksam.service.inference.load_model` with ``settings``); it runs in a
            background thread started at startup, and ``/health`` says 503 until it returns.
        on_load_error: called (from the loading thread) if the loader fails; ``cracksam serve``
            uses it to stop the server and report the error.
    """
    settings = (settings or ServiceSettings.from_env()).validated()
    Image.init()
    formats = tuple(f for f in IMAGE_FORMATS if f in Image.OPEN)
    state = ServiceState(settings=settings, formats=formats)
    if predictor is not None:
        safe = service_predictor(predictor)
        state.model = LoadedModel(safe, settings.model_id or model_id_for(predictor.describe()))
    load = loader or (lambda: load_model(settings))

    def _load_in_background() -> None:
        try:
            model = load()
        except BaseException as exc:  # noqa: BLE001 - reported through /health and on_load_error
            if isinstance(exc, CrackSAMError):
                log.error("cannot load the model: %s", exc)
            else:
                log.error("cannot load the model", exc_info=exc)
            state.load_error = str(exc) if isinstance(exc, CrackSAMError) else f"{type(exc).__name__}: {exc}"
            state.status = "error"
            if on_load_error is not None:
                on_load_error(exc)
            return
        state.model = model
        state.status = "ok"
        card = model.predictor.describe()
        log.info("model %s ready (%s; %s)", model.model_id, card.get("runtime"), card.get("inference"))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.runner = JobRunner(settings.workers, settings.max_pending)
        state.uploads = Budget(settings.inflight_upload_bytes, "bytes")
        state.pixels = Budget(settings.inflight_pixels, "pixels")
        threading.Thread(target=warm_measurement, name="cracksam-warm-measure", daemon=True).start()
        if state.model is not None:
            state.status = "ok"
        else:
            threading.Thread(target=_load_in_background, name="cracksam-load-model", daemon=True).start()
        try:
            yield
        finally:
            state.runner.shutdown()

    app = FastAPI(
        title="CrackSAM",
        version=__version__,
        summary="Crack segmentation (Segment Anything based) over HTTP.",
        lifespan=lifespan,
    )
    app.state.service = state
    install_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _add_routes(app, state)
    return app


def _model_card(state: ServiceState, model: LoadedModel) -> dict[str, Any]:
    card = dict(model.predictor.describe())
    if "file" in card:  # the server's own paths are not the client's business
        card["file"] = Path(str(card["file"])).name
    s = state.settings
    return {
        "id": model.model_id,
        **card,
        "cracksam_version": __version__,
        "limits": {"max_upload_bytes": s.max_upload_bytes, "max_pixels": s.max_pixels, "timeout_s": s.timeout_s,
                   "workers": s.workers, "max_inflight_upload_bytes": s.inflight_upload_bytes,
                   "max_inflight_pixels": s.inflight_pixels, "max_connections": s.max_connections,
                   "max_connections_per_client": s.max_connections_per_client,
                   "header_timeout_s": s.header_timeout_s},
        "image_formats": list(state.formats),
    }


def _add_routes(app: FastAPI, state: ServiceState) -> None:
    settings = state.settings

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.head("/health", include_in_schema=False)  # probes that send HEAD get the status without a body
    @app.get("/health", tags=["service"], responses={503: _error_doc("The model is loading or failed to load.")})
    async def health() -> JSONResponse:
        """200 ``{"status": "ok"}`` once the model is loaded; 503 while it loads or if it failed.
        ``jobs`` counts requests segmented and those skipped because their client had gone."""
        if state.status == "ok" and state.model is not None:
            runner = state.runner
            jobs = {"active": runner.active if runner else 0, "done": runner.done if runner else 0,
                    "skipped_client_gone": state.skipped_before_start + (runner.cancelled if runner else 0)}
            return JSONResponse({"status": "ok", "model_id": state.model.model_id, "jobs": jobs})
        body: dict[str, Any] = {"status": state.status}
        if state.load_error:
            body["detail"] = state.load_error
        return JSONResponse(body, status_code=503)

    @app.get("/v1/model", tags=["segmentation"], responses={503: _error_doc("The model is not loaded yet.")})
    async def model_card() -> JSONResponse:
        """The model card: runtime, precision, input size, mode, threshold, backbone, delta, id, limits."""
        return JSONResponse(_model_card(state, state.require_model()))

    request_body = {
        "required": True,
        "description": "The image: a multipart upload with the field `file`, or the raw bytes.",
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
                           "required": ["file"]},
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
    responses: dict[int | str, dict[str, Any]] = {
        200: {
            "description": "The mask: a PNG (0 = background, 255 = crack, the image's size) or JSON.",
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}},
                        "application/json": {"schema": {"type": "object"}}},
        },
        400: _error_doc("Empty body or malformed multipart."),
        406: _error_doc("The Accept header allows neither JSON nor PNG."),
        408: _error_doc("The body did not arrive within the timeout."),
        413: _error_doc("Upload over the byte limit, or image over the pixel limit (both quoted)."),
        415: _error_doc("Content-Type is not an image, octet-stream or multipart."),
        422: _error_doc("Not an image, a corrupt or truncated image, or bad query values."),
        503: _error_doc("Model not loaded yet, too many requests waiting, or the upload-byte / decoded-pixel "
                        "budget in flight is spent (see Retry-After)."),
        504: _error_doc("Processing took longer than the timeout."),
    }

    @app.post("/v1/segment", tags=["segmentation"], openapi_extra={"requestBody": request_body},
              responses=responses, response_class=Response)
    async def segment(
        request: Request,
        format: Format | None = Query(None, description="png or json; default from the Accept header (JSON)."),
        mask: MaskEncoding = Query("rle", description="How JSON carries the mask: rle (COCO uncompressed, "
                                                      "column-major), png (base64) or none."),
        measure: bool = Query(False, description="Add crack measurements (totals and per crack) to the JSON."),
        mm_per_px: float | None = Query(None, gt=0, allow_inf_nan=False,
                                        description="Pixel size in mm; implies measure=true."),
        min_length_px: float = Query(10.0, ge=0, allow_inf_nan=False, description="Shortest crack measured (px)."),
        threshold: float | None = Query(None, gt=0, lt=1, allow_inf_nan=False,
                                        description="Crack probability threshold (default: the model's)."),
        direction_deg: float = Query(90.0, ge=-360, le=360, allow_inf_nan=False,
                                     description="Crack types: travel direction, degrees counter-clockwise from "
                                                 "the image's horizontal (default 90: up the image)."),
        severity: SeverityName = Query("astm-d6433", description="Severity scheme (widths in mm need mm_per_px; "
                                                                 "without it pixel bands are used and said)."),
    ) -> Response:
        """Segment the cracks of one image."""
        t_request = time.perf_counter()
        model = state.require_model()
        chosen = negotiate(format, request.headers.get("accept"))
        wants_measure = measure or mm_per_px is not None
        if chosen == "png" and wants_measure:
            raise ApiError(422, "invalid_query", [{"parameter": "measure", "in": "query",
                                                   "message": "measurements come in JSON; use format=json"}])
        try:
            upload = await asyncio.wait_for(read_upload(request, state.uploads, log), timeout=settings.timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(408, "request_timeout", f"the upload did not arrive within {settings.timeout_s:g} s",
                           headers={"Connection": "close"}) from None
        try:
            if upload.size == 0:
                raise ApiError(400, "empty_body", "the request carries no image (0 bytes)")
            options = SegmentOptions(
                format=chosen,
                mask=mask,
                measure=wants_measure,
                mm_per_px=mm_per_px,
                min_length_px=min_length_px,
                threshold=model.predictor.threshold if threshold is None else threshold,
                direction_deg=direction_deg,
                severity=severity,
            )
            return await _run_segment(request, state, upload.file, upload.name, options, model, t_request)
        finally:
            upload.close()


async def _watch_client(request: Request, gone: threading.Event) -> None:
    """Set ``gone`` when the client disconnects (uvicorn reports it through ``receive``)."""
    while not gone.is_set():
        if await request.is_disconnected():
            gone.set()
            return
        await asyncio.sleep(DISCONNECT_POLL_S)


async def _run_segment(request: Request, state: ServiceState, file: IO[bytes], name: str, options: SegmentOptions,
                       model: LoadedModel, t_request: float) -> Response:
    settings = state.settings
    if await request.is_disconnected():  # sent and dropped: nobody would read the answer
        state.skipped_before_start += 1
        log.info("client of %s went away before processing; skipped", name)
        return Response(status_code=499)
    t_submit = time.perf_counter()
    remaining = settings.timeout_s - (t_submit - t_request)
    assert state.runner is not None  # require_model checked it
    gone = threading.Event()
    watcher = asyncio.create_task(_watch_client(request, gone))
    try:
        encoded = await state.runner.run(
            lambda: segment_job(file, name, options, model, settings, state.formats, t_request, t_submit,
                                cancel=gone, pixels=state.pixels),
            timeout=max(remaining, 0.001),
        )
    except Busy as exc:
        raise ApiError(503, "busy", str(exc), headers={"Retry-After": "1"}) from None
    except asyncio.TimeoutError:
        gone.set()  # the job stops at its next tile instead of finishing for nobody
        raise ApiError(504, "timeout", f"processing took longer than {settings.timeout_s:g} s") from None
    except Cancelled:
        log.info("client of %s went away during processing; stopped", name)
        return Response(status_code=499)
    finally:
        watcher.cancel()
    return Response(encoded.body, media_type=encoded.media_type, headers=encoded.headers)


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory cracksam.service.app:app_from_env``: settings from ``CRACKSAM_*``."""
    return create_app(ServiceSettings.from_env())
