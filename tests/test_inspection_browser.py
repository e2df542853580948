"""The HTML report in headless Chromium (Playwright), with every network request refused."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from cracksam.inspection.report_folder import SurveyOptions, build_survey, discover_items

from .test_inspection_exports import three_cracks
from .test_measure import bar
from .test_web import CHROMIUM, launch_chromium

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium found (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    res = root / "masks"
    res.mkdir()
    masks = {"b": three_cracks(), "a": bar(300, 6, 45), "c": bar(100, 3, 90) | bar(40, 3, 0, centre=(60.3, 350.2))}
    for name, mask in masks.items():
        cv2.imwrite(str(res / f"{name}_mask.png"), mask.astype(np.uint8) * 255)
    build_survey(discover_items(res)[0], root / "out", SurveyOptions(mm_per_px=0.25))
    return root / "out"


@pytest.fixture(scope="module")
def page(report):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            context = browser.new_context(offline=True)
            requests: list[str] = []
            # Anything but the page itself and its data: URIs would be a dependency on a network.
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
                          else (requests.append(route.request.url), route.abort()))
            page = context.new_page()
            page.set_default_timeout(60_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto((report / "report.html").as_uri(), wait_until="load")
            page.requests, page.js_errors = requests, errors
            yield page
        finally:
            browser.close()


def test_page_loads_offline_with_its_images(page):
    assert page.title() == "Crack inspection report"
    assert page.requests == [] and page.js_errors == []
    broken = page.evaluate("""() => Array.from(document.images)
        .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt)""")
    assert broken == []
    assert page.evaluate("document.images.length") == 3 + 3  # plots + thumbnails


def column(page, table: str, index: int) -> list[str]:
    return page.eval_on_selector_all(f"#{table} tbody tr", f"rows => rows.map(r => r.cells[{index}].dataset.value)")


def test_table_sorts_by_number_and_text(page):
    header = "#images thead th"
    counts = [float(v) for v in column(page, "images", 2)]
    page.locator(header).nth(2).click()  # cracks, ascending
    assert [float(v) for v in column(page, "images", 2)] == sorted(counts)
    assert page.locator(header).nth(2).get_attribute("aria-sort") == "ascending"
    page.locator(header).nth(2).click()  # descending
    assert [float(v) for v in column(page, "images", 2)] == sorted(counts, reverse=True)
    lengths = [float(v) for v in column(page, "images", 3)]
    page.locator(header).nth(3).click()
    assert [float(v) for v in column(page, "images", 3)] == sorted(lengths)
    page.locator(header).nth(1).click()  # name, text
    assert column(page, "images", 1) == ["a", "b", "c"]
    page.locator(header).nth(1).click()
    assert column(page, "images", 1) == ["c", "b", "a"]


def test_numbers_shown_equal_the_json(page, report):
    doc = json.loads((report / "inspection.json").read_text())
    shown = page.evaluate("""() => Object.fromEntries(Array.from(document.querySelectorAll('#images tbody tr'))
        .map(r => [r.dataset.name, Array.from(r.cells).map(c => c.innerText.trim())]))""")
    for im in doc["images"]:
        t = im["totals"]
        row = shown[im["name"]]
        assert row[2] == str(t["n_cracks"])
        assert float(row[3]) == pytest.approx(t["total_length_mm"], abs=0.05 + 1e-9)
        assert float(row[4]) == pytest.approx(t["mean_width_mm"], abs=0.0005 + 1e-9)
        assert float(row[5]) == pytest.approx(t["max_width_mm"], abs=0.0005 + 1e-9)
        assert row[7] == im["inspection"]["worst_severity"]
        cracks = page.evaluate(f"""() => Array.from(document.querySelectorAll(
            'section[data-name="{im["name"]}"] tbody tr'))
            .map(r => Array.from(r.cells).map(c => c.innerText.trim()))""")
        assert [(int(r[0]), r[1], r[6]) for r in cracks] == [(c["id"], c["type"], c["severity"]) for c in im["cracks"]]
        for r, c in zip(cracks, im["cracks"], strict=True):
            assert float(r[2]) == pytest.approx(c["length_mm"], abs=0.05 + 1e-9)
    cards = page.evaluate("""() => Object.fromEntries(Array.from(document.querySelectorAll('[data-key]'))
        .map(e => [e.dataset.key, e.innerText.replace(/\\u2009/g, '')]))""")
    assert int(cards["cracks"]) == doc["summary"]["cracks"] == sum(len(im["cracks"]) for im in doc["images"])
    assert float(cards["total_length"]) == pytest.approx(doc["summary"]["total_length"], abs=0.05 + 1e-9)


def test_overlay_links_open_the_full_size_picture(page, report):
    href = page.locator("#images tbody tr a").first.get_attribute("href")
    assert href.startswith("overlays/") and (report / href).is_file()
    popup = page.context.new_page()
    try:
        popup.goto((report / href).as_uri())
        size = popup.evaluate("[document.images[0].naturalWidth, document.images[0].naturalHeight]")
    finally:
        popup.close()
    assert size == [400, 400]
