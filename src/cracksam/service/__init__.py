"""``cracksam serve``: crack segmentation over HTTP (FastAPI + uvicorn) with a small web page.

* :mod:`cracksam.service.app` -- the app, built by :func:`create_app` (lifespan, model loading);
* :mod:`cracksam.service.routes` -- the endpoints; :mod:`~cracksam.service.negotiation` (PNG or JSON),
  :mod:`~cracksam.service.openapi` (the documented bodies and statuses);
* :mod:`cracksam.service.segment` -- one segmentation job, free of the web framework;
* :mod:`cracksam.service.uploads` -- reading an upload under the shared byte budget;
* :mod:`cracksam.service.settings` -- :class:`ServiceSettings` (flags and ``CRACKSAM_*`` variables);
* :mod:`cracksam.service.served_model` -- loading the model once and running it from many threads;
* ``encode_rle``/``decode_rle`` -- the mask RLE of the JSON answers (COCO uncompressed, column-major),
  from :mod:`cracksam.data.rle` (the project's one RLE encoder, which the COCO export uses too);
* :mod:`cracksam.service.server` -- uvicorn in the foreground or a background thread;
* ``static/`` -- the web page served at ``/``.

FastAPI is imported only when the app is built (``create_app``), and the RLE functions when first
asked for, so importing this package is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cracksam.service.settings import ServiceSettings

if TYPE_CHECKING:
    from cracksam.data.rle import decode_rle, encode_rle
    from cracksam.service.app import create_app

__all__ = ["ServiceSettings", "create_app", "decode_rle", "encode_rle"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from cracksam.service.app import create_app

        return create_app
    if name in ("decode_rle", "encode_rle"):
        from cracksam.data import rle

        return getattr(rle, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
