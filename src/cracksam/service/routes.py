"""The endpoints of the service (``/``, ``/health``, ``/v1/model``, ``/v1/segment``), added to an
app by :func:`add_routes`; the app itself (lifespan, model loading, middleware) is built in
:mod:`cracksam.service.app`.  A segmentation request is parsed here, then handed as a
framework-free job (:func:`~cracksam.service.segment.segment_job`) to the thread pool, while the
request watches whether its client is still there."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import IO, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from cracksam import __version__
from cracksam.service.negotiation import negotiate
from cracksam.service.openapi import HEALTH_RESPONSES, MODEL_RESPONSES, SEGMENT_REQUEST_BODY, SEGMENT_RESPONSES
from cracksam.service.problems import ApiError
from cracksam.service.segment import Format, MaskEncoding, SegmentOptions, segment_job
from cracksam.service.served_model import Busy, Cancelled, LoadedModel
from cracksam.service.state import ServiceState
from cracksam.service.uploads import read_upload

log = logging.getLogger("cracksam.service")

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: How often a request waiting for its job asks whether its client is still connected.
DISCONNECT_POLL_S = 0.1

SeverityName = Literal["astm-d6433", "concrete", "pixels"]  # inspection.SCHEMES; never a file in a request


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
                   "max_client_inflight_upload_bytes": s.client_upload_bytes,
                   "upload_idle_timeout_s": s.upload_idle_timeout_s,
                   "max_inflight_pixels": s.inflight_pixels, "max_connections": s.max_connections,
                   "max_connections_per_client": s.max_connections_per_client,
                   "header_timeout_s": s.header_timeout_s},
        "image_formats": list(state.formats),
    }


def add_routes(app: FastAPI, state: ServiceState) -> None:
    """Add the endpoints, which read and update ``state``, to ``app``."""
    settings = state.settings

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.head("/health", include_in_schema=False)  # probes that send HEAD get the status without a body
    @app.get("/health", tags=["service"], responses=HEALTH_RESPONSES)
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

    @app.get("/v1/model", tags=["segmentation"], responses=MODEL_RESPONSES)
    async def model_card() -> JSONResponse:
        """The model card: runtime, precision, input size, mode, threshold, backbone, delta, id, limits."""
        return JSONResponse(_model_card(state, state.require_model()))

    @app.post("/v1/segment", tags=["segmentation"], openapi_extra={"requestBody": SEGMENT_REQUEST_BODY},
              responses=SEGMENT_RESPONSES, response_class=Response)
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
            upload = await asyncio.wait_for(read_upload(request, state.uploads, log, clients=state.client_uploads,
                                                        idle_timeout_s=settings.upload_idle_timeout_s),
                                            timeout=settings.timeout_s)
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
