"""The work of one ``POST /v1/segment``, done in a pool thread: decode, segment, encode.

Blocking is fine here (see :class:`~cracksam.service.served_model.JobRunner`).  Every failure of the
input becomes a 4xx :class:`~cracksam.service.problems.ApiError`; a job whose client went away
stops with :class:`~cracksam.service.served_model.Cancelled`; an image's decoded pixels count against
the service's pixel budget while it is processed.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import warnings
from dataclasses import dataclass
from typing import IO, Any, Literal

import numpy as np
from PIL import Image

from cracksam._files import encode_mask_png
from cracksam.data.io import CorruptImageError, ImageTooLargeError, NotAnImageError, decode_image
from cracksam.data.rle import encode_rle
from cracksam.errors import CrackSAMError, DatasetError
from cracksam.service.problems import ApiError
from cracksam.service.served_model import LoadedModel, cancellable, check_cancelled
from cracksam.service.settings import ServiceSettings
from cracksam.service.uploads import Budget

log = logging.getLogger("cracksam.service")

Format = Literal["png", "json"]
MaskEncoding = Literal["rle", "png", "none"]


# -- the work done in a pool thread -------------------------------------------------------------


@dataclass(frozen=True)
class SegmentOptions:
    format: Format
    mask: MaskEncoding
    measure: bool
    mm_per_px: float | None
    min_length_px: float
    threshold: float
    direction_deg: float = 90.0  # crack types: reference (travel) direction
    severity: str = "astm-d6433"  # a built-in severity scheme


@dataclass(frozen=True)
class Encoded:
    body: bytes
    media_type: str
    headers: dict[str, str]


def decode_upload(data: bytes | IO[bytes], name: str, max_pixels: int, formats: tuple[str, ...]) -> np.ndarray:
    """Decode an upload; every failure becomes a 4xx :class:`ApiError` naming the problem."""
    try:
        image = decode_image(data, max_pixels=max_pixels, name=name, formats=formats)
    except ImageTooLargeError as exc:
        raise ApiError(413, "image_too_large", str(exc)) from None
    except CorruptImageError as exc:
        raise ApiError(422, "corrupt_image", str(exc)) from None
    except NotAnImageError as exc:
        raise ApiError(422, "not_an_image", f"{exc} (accepted formats: {', '.join(formats)})") from None
    except DatasetError as exc:
        raise ApiError(422, "unreadable_image", str(exc)) from None
    except MemoryError:
        raise ApiError(413, "image_too_large", f"{name}: not enough memory to decode the image") from None
    except Exception as exc:  # a decoder bug on hostile input is still the input's problem: 4xx, but logged
        log.warning("unexpected error decoding %s", name, exc_info=True)
        raise ApiError(422, "unreadable_image", f"{name}: cannot decode the image ({type(exc).__name__})") from None
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise ApiError(422, "unreadable_image", f"{name}: decoded to an unusable shape {image.shape}")
    return image


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 2)


def image_pixels(file: IO[bytes], formats: tuple[str, ...]) -> int:
    """Width x height from the image header (no decoding); 0 when the header is unreadable (the
    decoder then reports why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(file, formats=list(formats)) as im:
                width, height = im.size
    except Exception:  # noqa: BLE001 - any header problem is reported by decode_upload
        return 0
    finally:
        file.seek(0)
    return int(width) * int(height)


def reserve_pixels(budget: Budget | None, pixels: int, max_pixels: int) -> int:
    """Count an image's pixels against the service's decoded-pixel budget, or answer 503.  Images
    over ``max_pixels`` are left to the decoder's 413 (which quotes that limit)."""
    if budget is None or pixels <= 0 or pixels > max_pixels:
        return 0
    if not budget.take(pixels):
        raise ApiError(503, "pixel_budget",
                       f"the service is decoding {budget.used} pixels already; this {pixels}-pixel image would pass "
                       f"its budget of {budget.total} pixels in flight; retry shortly", headers={"Retry-After": "2"})
    return pixels


def segment_job(
    data: bytes | IO[bytes], name: str, options: SegmentOptions, model: LoadedModel, settings: ServiceSettings,
    formats: tuple[str, ...], t_request: float, t_submit: float, cancel: threading.Event | None = None,
    pixels: Budget | None = None,
) -> Encoded:
    """Decode, segment and encode one upload (runs in a pool thread; blocking is fine here).

    Stops with :class:`Cancelled` when ``cancel`` is set (the client went away): before decoding,
    before the forward pass and between tiles; the image's pixels count against ``pixels`` while it runs."""
    t_start = time.perf_counter()
    with cancellable(cancel or threading.Event()):
        check_cancelled()
        held = reserve_pixels(pixels, image_pixels(data, formats), settings.max_pixels) if not isinstance(
            data, bytes) else 0
        try:
            image = decode_upload(data, name, settings.max_pixels, formats)
            t_decoded = time.perf_counter()
            mask = model.predictor.predict_one(image).mask(options.threshold)
            del image
            return _encode(mask, name, options, model, t_request, t_submit, t_start, t_decoded)
        finally:
            if held and pixels is not None:
                pixels.give(held)


def _encode(mask: np.ndarray, name: str, options: SegmentOptions, model: LoadedModel, t_request: float,
            t_submit: float, t_start: float, t_decoded: float) -> Encoded:
    t_inferred = time.perf_counter()
    h, w = mask.shape
    crack = int(np.count_nonzero(mask))
    headers = {"X-Model-Id": model.model_id, "X-Crack-Pixels": str(crack), "X-Image-Width": str(w),
               "X-Image-Height": str(h)}
    if options.format == "png":
        body, media = encode_mask_png(mask), "image/png"
        timing = _timing(t_request, t_submit, t_start, t_decoded, t_inferred, time.perf_counter())
    else:
        doc: dict[str, Any] = {
            "model_id": model.model_id,
            "width": w,
            "height": h,
            "threshold": options.threshold,
            "crack_pixels": crack,
            "crack_fraction": crack / float(h * w),
        }
        if options.mask == "rle":
            doc["mask"] = {"encoding": "rle", **encode_rle(mask)}
        elif options.mask == "png":
            doc["mask"] = {"encoding": "png", "size": [h, w], "data": base64.b64encode(encode_mask_png(mask)).decode()}
        if options.measure:
            doc["measurement"] = _measure(mask, name, options)
        timing = _timing(t_request, t_submit, t_start, t_decoded, t_inferred, time.perf_counter())
        doc["timing_ms"] = timing
        body, media = json.dumps(doc, separators=(",", ":")).encode(), "application/json"
    headers["Server-Timing"] = ", ".join(f"{k.removesuffix('_ms')};dur={v}" for k, v in timing.items())
    return Encoded(body, media, headers)


def _timing(t_request: float, t_submit: float, t_start: float, t_decoded: float, t_inferred: float,
            t_end: float) -> dict[str, float]:
    return {
        "upload_ms": _ms(t_submit - t_request),  # reading the body after the headers arrived
        "queue_ms": _ms(t_start - t_submit),
        "decode_ms": _ms(t_decoded - t_start),
        "inference_ms": _ms(t_inferred - t_decoded),
        "postprocess_ms": _ms(t_end - t_inferred),
        "total_ms": _ms(t_end - t_request),
    }


def warm_measurement() -> None:
    """Import and JIT-compile the measurement code (skimage, skan/numba: several seconds, once per
    process) in the background at startup, so the first ``measure=true`` request is not that slow."""
    try:
        from cracksam.measurement import measure_mask

        probe = np.zeros((16, 24), np.uint8)
        probe[8, 2:22] = 1
        measure_mask(probe, min_length_px=0)
    except Exception:  # noqa: BLE001 - a failure here shows again, with its message, on a real request
        log.warning("warming up the measurement code failed", exc_info=True)


def _measure(mask: np.ndarray, name: str, options: SegmentOptions) -> dict[str, Any]:
    from cracksam.inspection import TypeRules, inspect_mask, inspection_to_dict

    try:
        ins = inspect_mask(mask, mm_per_px=options.mm_per_px, min_length_px=options.min_length_px,
                           rules=TypeRules(direction_deg=options.direction_deg), severity=options.severity)
    except CrackSAMError as exc:  # the query values were checked; this is a guard, not a path
        raise ApiError(422, "invalid_query", str(exc)) from None
    return inspection_to_dict(ins, source=name)


