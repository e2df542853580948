"""The HTTP API's measurement JSON carries each crack's type and severity."""

from __future__ import annotations

import base64

import cv2
import numpy as np
from PIL import Image

from cracksam.inspection import TypeRules, inspect_mask

from .test_service import assert_error, crack_rgb, dark_server, encode, post_image  # noqa: F401 - fixture


def test_segment_json_has_type_and_severity_per_crack(dark_server):  # noqa: F811 - the fixture
    data = encode(Image.fromarray(crack_rgb(120, 200, seed=3)), "PNG")
    doc = post_image(dark_server.url, data, query="?mask=png&mm_per_px=0.05&severity=concrete&direction_deg=0",
                     timeout=120).json()
    mask = cv2.imdecode(np.frombuffer(base64.b64decode(doc["mask"]["data"]), np.uint8), cv2.IMREAD_UNCHANGED) > 0
    ins = inspect_mask(mask, mm_per_px=0.05, rules=TypeRules(direction_deg=0), severity="concrete")
    got = doc["measurement"]
    assert [c["type"] for c in got["cracks"]] == [c.type for c in ins.classes]
    assert [c["severity"] for c in got["cracks"]] == [g.label for g in ins.grades]
    assert got["inspection"]["severity_scheme"]["name"] == "concrete"
    assert got["inspection"]["type_rules"]["direction_deg"] == 0
    plain = post_image(dark_server.url, data, query="?measure=true", timeout=120).json()["measurement"]
    assert plain["inspection"]["severity_scheme"]["name"] == "pixels"  # no scale: pixel bands, and said
    assert "no pixel size" in plain["inspection"]["severity_note"]


def test_bad_type_and_severity_queries_are_422(dark_server):  # noqa: F811
    good = encode(Image.fromarray(crack_rgb()), "PNG")
    for query, parameter in [("?measure=true&severity=/etc/passwd", "severity"),
                             ("?measure=true&direction_deg=nan", "direction_deg")]:
        body = assert_error(post_image(dark_server.url, good, query=query), 422, "invalid_query")
        assert body["detail"][0]["parameter"] == parameter


def test_the_api_offers_every_built_in_scheme():
    import typing

    from cracksam.inspection import SCHEMES
    from cracksam.service.routes import SeverityName

    assert set(typing.get_args(SeverityName)) == set(SCHEMES)
