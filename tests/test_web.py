"""The web page at ``/``, driven in a real browser (Playwright + the system's Chromium)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cracksam.service.app import create_app
from cracksam.service.server import ThreadedServer
from cracksam.service.settings import ServiceSettings

from .test_service import crack_rgb, dark_predictor, encode


def find_chromium() -> str | None:
    """A Chromium binary: $CRACKSAM_CHROMIUM, Debian's /usr/bin/chromium, or one on PATH.
    (Playwright's own browser download needs the internet; the system package does not.)"""
    candidates = [os.environ.get("CRACKSAM_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser",
                  shutil.which("chromium"), shutil.which("chromium-browser"), shutil.which("google-chrome")]
    return next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)


CHROMIUM = find_chromium()


def launch_chromium(pw):
    """Headless Chromium as containers allow it (no sandbox, no GPU, /dev/shm may be tiny)."""
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
# In its own pytest process (`pytest -m browser`): a long pytest process that had also run these
# Playwright tests segfaulted after them (at the next test module; no Python trace could be had),
# while each part alone passes.  Keeping the browser out of the main process avoids that.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium found (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    with ThreadedServer(create_app(ServiceSettings(max_pixels=1_000_000), predictor=dark_predictor())) as s:
        yield s


@pytest.fixture(scope="module")
def page(server):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def overlay_pixels(page) -> int:
    """Pixels the page actually painted on the overlay canvas (alpha > 0)."""
    return page.evaluate("""() => {
        const c = document.getElementById('overlay');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n;
    }""")


def test_upload_shows_the_mask_overlay_and_the_statistics(server, page, tmp_path):
    image = crack_rgb(120, 200, seed=3)
    path = tmp_path / "crack.png"
    Image.fromarray(image).save(path)
    expected = dark_predictor().predict_one(image).mask()

    page.goto(server.url + "/")
    page.wait_for_function("document.getElementById('model').textContent.includes('model-')")
    page.fill("#mmpx", "0.5")
    page.set_input_files("#file", str(path))
    page.wait_for_function("document.getElementById('overlay').dataset.crackPixels !== undefined")
    assert page.is_visible("#result") and not page.is_visible("#error")
    size = page.evaluate("[document.getElementById('overlay').width, document.getElementById('overlay').height]")
    assert size == [200, 120]
    drawn = overlay_pixels(page)
    assert drawn == int(expected.sum()) > 0  # exactly the server's crack pixels are painted
    stats = page.inner_text("#stats")
    assert "Crack pixels" in stats and f"{int(expected.sum()):,}" in stats
    assert "Crack fraction" in stats and "Total length" in stats and "Max width" in stats and "mm" in stats
    assert "Cracks\n1" in stats or "Cracks\t1" in stats
    # Image pixels are drawn under the overlay (not a blank canvas).
    assert page.evaluate("""() => {
        const c = document.getElementById('image');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return d[0] + d[1] + d[2];
    }""") > 0
    page.fill("#opacity", "20")
    page.dispatch_event("#opacity", "input")
    assert page.evaluate("document.getElementById('overlay').style.opacity") == "0.2"
    page.screenshot(path=str(tmp_path / "page.png"))


def test_api_errors_are_shown_in_the_page(server, page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    good = tmp_path / "good.jpg"
    Image.fromarray(crack_rgb()).save(good, quality=95)
    page.goto(server.url + "/")
    page.set_input_files("#file", str(good))
    page.wait_for_selector("#result:not([hidden])")
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#error:not([hidden])")
    text = page.inner_text("#error")
    assert "422" in text and "not_an_image" in text and "notes.png" in text
    assert not page.is_visible("#result")
    # A too-large image (pixel limit) is reported too, and a good image afterwards still works.
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((1200, 1000, 3), np.uint8)).save(big)
    page.set_input_files("#file", str(big))
    page.wait_for_function("document.getElementById('error').textContent.includes('image_too_large')")
    assert not page.is_visible("#result")
    page.set_input_files("#file", str(good))
    page.wait_for_selector("#result:not([hidden])")
    assert page.is_hidden("#error") and overlay_pixels(page) > 0


def test_drag_and_drop_uploads_too(server, page):
    page.goto(server.url + "/")
    data = list(encode(Image.fromarray(crack_rgb(64, 96, seed=5)), "PNG"))
    page.evaluate("""(bytes) => {
        const file = new File([new Uint8Array(bytes)], 'dropped.png', {type: 'image/png'});
        const dt = new DataTransfer();
        dt.items.add(file);
        document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true,
                                                                             cancelable: true}));
    }""", data)
    page.wait_for_selector("#result:not([hidden])")
    assert "dropped.png: done" in page.inner_text("#status") and overlay_pixels(page) > 0
