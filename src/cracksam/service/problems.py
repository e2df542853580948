"""Error answers of the service: every failure is JSON ``{"error": <code>, "detail": <what>}``.

``error`` is a short, stable code a client can branch on (``not_an_image``, ``image_too_large``,
...); ``detail`` says what was wrong in words (or, for bad query values, which parameter and
why).  Bad input always gets a 4xx; a 5xx means the service itself failed (not ready, busy,
timed out, or a bug -- which is logged with its traceback).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("cracksam.service")


class ApiError(Exception):
    """An answer other than success, raised anywhere while handling a request."""

    def __init__(self, status: int, error: str, detail: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers


def error_response(status: int, error: str, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": jsonable_encoder(detail)}, status_code=status, headers=headers)


def _code(status: int) -> str:
    """``404`` -> ``not_found``: the HTTP reason phrase as a code, for errors raised by Starlette."""
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def _validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Which parameter was wrong and why, without echoing large inputs back."""
    out = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        where = loc[0] if loc else ""
        name = ".".join(loc[1:]) if len(loc) > 1 else where
        out.append({"parameter": name, "in": where, "message": err.get("msg", "invalid value")})
    return out


def install_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every exception into the JSON error format."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.error, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_query", _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, _code(exc.status_code), exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        # Reached only for a genuine fault of the service (bad input is mapped to 4xx before).
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error", f"the service failed ({type(exc).__name__}); see its log")
