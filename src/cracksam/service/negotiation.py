"""Which answer a ``POST /v1/segment`` request gets: PNG or JSON, from ``?format=`` or ``Accept``.

Kept apart from the routes so the rules (q-values, the most specific range deciding, JSON on a tie)
can be read and tested without FastAPI.
"""

from __future__ import annotations

import math

from cracksam.service.problems import ApiError
from cracksam.service.segment import Format


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
