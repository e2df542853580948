"""The parts of the OpenAPI document FastAPI cannot infer: the error body, the upload body of
``POST /v1/segment`` (multipart or raw bytes, read by hand in :mod:`cracksam.service.uploads`) and
what each status code means."""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {}},
    "required": ["error", "detail"],
}


def error_doc(text: str) -> dict[str, Any]:
    """The OpenAPI response entry of an error status: ``text`` and the JSON error body."""
    return {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}


HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {503: error_doc("The model is loading or failed to load.")}
MODEL_RESPONSES: dict[int | str, dict[str, Any]] = {503: error_doc("The model is not loaded yet.")}

SEGMENT_REQUEST_BODY: dict[str, Any] = {
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

SEGMENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The mask: a PNG (0 = background, 255 = crack, the image's size) or JSON.",
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}},
                    "application/json": {"schema": {"type": "object"}}},
    },
    400: error_doc("Empty body or malformed multipart."),
    406: error_doc("The Accept header allows neither JSON nor PNG."),
    408: error_doc("The body did not arrive within the timeout, or stalled (no byte for upload_idle_timeout_s)."),
    413: error_doc("Upload over the byte limit, or image over the pixel limit (both quoted)."),
    415: error_doc("Content-Type is not an image, octet-stream or multipart."),
    422: error_doc("Not an image, a corrupt or truncated image, or bad query values."),
    503: error_doc("Model not loaded yet, too many requests waiting, or the upload-byte / decoded-pixel "
                   "budget in flight (or this client's share of the upload bytes) is spent (see Retry-After)."),
    504: error_doc("Processing took longer than the timeout."),
}
