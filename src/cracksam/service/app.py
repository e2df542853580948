"""The HTTP service: ``POST /v1/segment`` and friends, built by :func:`create_app`.

Endpoints (OpenAPI at ``/openapi.json``, interactive docs at ``/docs``):

* ``POST /v1/segment`` -- an image as a multipart upload (field ``file``) or as the raw body
  (``Content-Type: image/...`` or ``application/octet-stream``).  Answers a PNG mask (0/255, the
  size of the image as displayed, EXIF orientation applied) or JSON, chosen by ``?format=`` or
  else the ``Accept`` header (JSON when both are acceptable).  The JSON carries the mask as RLE
  (see :mod:`cracksam.data.rle`: COCO uncompressed, column-major) or a base64 PNG
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
thread pool (:class:`~cracksam.service.served_model.JobRunner`), so concurrent requests neither
block the event loop nor share mutable state (see :mod:`cracksam.service.served_model`).  Each
request is its own forward pass: concurrent requests are not micro-batched (a possible later
optimisation; on CPU, parallel single-image calls already keep the cores busy).

Resources stay bounded whatever clients do: uploads are spooled to temporary files under a
byte budget shared by all requests, of which one client holds only its share and a stalled body is
cut off after a few idle seconds (:mod:`cracksam.service.uploads`), decoded pixels in flight
under a pixel budget (503 with ``Retry-After`` past either), and a request whose client has gone
is skipped before its forward pass, or stopped between tiles (:class:`~cracksam.service.served_model.
CancellableBackend`).  Connection-level limits are in :mod:`cracksam.service.protocol`.

The routes are in :mod:`cracksam.service.routes`, content negotiation in
:mod:`cracksam.service.negotiation`, the OpenAPI additions in :mod:`cracksam.service.openapi`.

No request names a file on the server: uploads are decoded from their spooled copy, and an
upload's file name is only echoed in messages.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from PIL import Image

from cracksam import __version__
from cracksam.errors import CrackSAMError
from cracksam.inference.predictor import Predictor
from cracksam.models.identity import model_id_for
from cracksam.service.limits import BodySizeLimit
from cracksam.service.negotiation import negotiate
from cracksam.service.problems import install_handlers
from cracksam.service.routes import STATIC_DIR, SeverityName, add_routes
from cracksam.service.segment import warm_measurement
from cracksam.service.served_model import JobRunner, LoadedModel, load_service_model, service_predictor
from cracksam.service.settings import ServiceSettings
from cracksam.service.state import ServiceState
from cracksam.service.uploads import Budget, ClientBudgets

# Names that lived here before the routes, negotiation and state got modules of their own.
__all__ = ["IMAGE_FORMATS", "STATIC_DIR", "ServiceState", "SeverityName", "app_from_env", "create_app", "negotiate"]

log = logging.getLogger("cracksam.service")

#: Pillow formats the service decodes (fewer parsers exposed to untrusted bytes than Pillow's ~40).
#: JPEG covers MPO (multi-picture JPEGs from phones).
IMAGE_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", "PPM", "AVIF")


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
            :func:`~cracksam.service.served_model.load_service_model` with ``settings``); it runs in a
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
    load = loader or (lambda: load_service_model(settings))

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
        # share 1: no per-client cap (behind a proxy every request has the proxy's address)
        state.client_uploads = ClientBudgets(settings.client_upload_bytes) if settings.client_upload_share < 1 else None
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
    add_routes(app, state)
    return app


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory cracksam.service.app:app_from_env``: settings from ``CRACKSAM_*``."""
    return create_app(ServiceSettings.from_env())
