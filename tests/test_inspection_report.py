"""The HTML report without a browser: offline (no external URL), numbers equal inspection.json;
and ``predict --report``."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from cracksam.cli.main import main
from cracksam.inspection.report_folder import SurveyOptions, build_survey, discover_items
from cracksam.inspection.report_html import fmt

from .test_inspection_exports import three_cracks
from .test_measure import bar


class Page(HTMLParser):
    """Collects the URLs the page refers to and the cells/cards that carry a ``data-value``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []
        self.tables: dict[str, list[list[tuple[str, str]]]] = {}
        self.cards: dict[str, tuple[str, str]] = {}
        self._table: str | None = None
        self._cell: list | None = None
        self._card: str | None = None
        self._n = 0
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        for key in ("src", "href", "data", "action", "poster"):
            if a.get(key) is not None:
                self.urls.append((tag, a[key]))
        if tag == "link" or (tag == "script" and "src" in a):
            self.urls.append((tag, a.get("href") or a.get("src") or ""))
        if tag == "table":
            self._n += 1
            self._table = a.get("id") or f"table{self._n}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag == "td" and self._table:
            self._cell = [a.get("data-value"), ""]
        elif "data-key" in a:
            self._card = a["data-key"]
            self.cards[self._card] = (a["data-value"], "")

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data
        if self._card is not None:
            v, t = self.cards[self._card]
            self.cards[self._card] = (v, t + data)

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None and self._table:
            self.tables[self._table][-1].append(tuple(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "div" and self._card is not None:
            self._card = None


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("rep")
    res = root / "masks"
    res.mkdir()
    for name, mask in {"b": three_cracks(), "a": bar(300, 6, 45), "c": bar(100, 3, 90)}.items():
        cv2.imwrite(str(res / f"{name}_mask.png"), mask.astype(np.uint8) * 255)
    items, problems = discover_items(res)
    doc = build_survey(items, root / "out", SurveyOptions(mm_per_px=0.25))
    return root / "out", doc


def test_page_refers_to_nothing_outside_itself(report):
    out, doc = report
    page = parse(out / "report.html")
    assert page.urls
    for tag, url in page.urls:
        assert not re.match(r"^[a-z][a-z0-9+.-]*://", url, re.I) and not url.startswith("//"), (tag, url)
        if not url.startswith(("data:", "#")):
            assert (out / url).is_file(), url  # a relative link to a file written beside the page
    assert "link" not in page.tags and "iframe" not in page.tags
    text = (out / "report.html").read_text()
    assert "http://" not in text and "https://" not in text
    assert text.count("data:image/png;base64,") == 3  # the three plots
    assert text.count("data:image/jpeg;base64,") == 3  # a thumbnail per image


def _check(cell: tuple[str, str], value) -> None:
    data, text = cell
    if isinstance(value, str):
        assert data == value and text.strip() == value
        return
    assert float(data) == value
    shown = text.replace("\u2009", "").strip()
    digits = len(shown.split(".")[1]) if "." in shown else 0
    assert abs(float(shown) - value) <= 0.5 * 10 ** -digits + 1e-12, (shown, value)
    assert shown == fmt(value, digits).replace("\u2009", "")


def test_numbers_shown_equal_the_json(report):
    out, doc = report
    page = parse(out / "report.html")
    s = doc["summary"]
    for key in ("images", "failed", "cracks", "total_length", "total_area"):
        _check(page.cards[key], s[key])
    rows = [r for r in page.tables["images"] if r]
    assert [r[1][0] for r in rows] == [im["name"] for im in doc["images"]] == ["a", "b", "c"]
    for row, im in zip(rows, doc["images"], strict=True):
        t = im["totals"]
        for cell, value in zip(row[2:7], [t["n_cracks"], t["total_length_mm"], t["mean_width_mm"],
                                          t["max_width_mm"], im["density"]["m_per_m2"]], strict=True):
            _check(cell, value)
        _check(row[7], im["inspection"]["worst_severity"])
    crack_tables = [rows for name, rows in page.tables.items() if name not in ("images", "worst")]
    assert len(crack_tables) == 3
    for table, im in zip(crack_tables, doc["images"], strict=True):
        body = [r for r in table if r]
        assert len(body) == len(im["cracks"])
        for row, c in zip(body, im["cracks"], strict=True):
            for cell, value in zip(row, [c["id"], c["type"], c["length_mm"], c["mean_width_mm"], c["max_width_mm"],
                                         c["angle_to_direction_deg"], c["severity"]], strict=True):
                _check(cell, value)
    worst = [r for r in page.tables["worst"] if r]
    assert [int(r[1][0]) for r in worst] == list(s["images_by_worst_severity"].values())


def test_sum_of_crack_lengths_in_the_json_is_the_summary(report):
    _, doc = report
    total = sum(c["length_mm"] for im in doc["images"] for c in im["cracks"])
    assert doc["summary"]["total_length"] == pytest.approx(total, abs=1e-3)
    assert doc["summary"]["length_by_type"]["network"] > 0 and doc["summary"]["types"]["diagonal"] == 1


def test_predict_report_writes_the_report_from_the_predictions(tmp_path, capsys):
    from .test_predict import _crack_rgb, export_full_darkness

    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "road.png"), _crack_rgb(200, 300))
    rc = main(["predict", str(folder), "--model", str(export_full_darkness(tmp_path)), "--out", str(tmp_path / "out"),
               "--report", "--mm-per-px", "0.5", "--json", "--no-progress", "--mode", "tile"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    report = tmp_path / "out" / "report"
    assert summary["report"] == str(report / "report.html") and (report / "report.html").is_file()
    doc = json.loads((report / "inspection.json").read_text())
    assert doc["images"][0]["photo"] == str(folder / "road.png")
    assert doc["summary"]["cracks"] == 1 and doc["options"]["mm_per_px"] == 0.5
    # The same folder again with `cracksam report`: summary.json leads to the same masks and photos.
    assert main(["report", str(tmp_path / "out"), "--out", str(tmp_path / "again"), "--mm-per-px", "0.5",
                 "--json", "--no-progress"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["cracks"] == 1 and again["total_length"] == doc["summary"]["total_length"]


def test_a_folder_of_photos_is_refused_before_any_report(tmp_path, capsys):
    from cracksam.data.synthetic import make_dataset

    photos = make_dataset(tmp_path / "data", n=3, size=(64, 64)) / "images"
    for argv in (["report", str(photos)], ["report", str(photos), "--out", str(tmp_path / "rep")]):
        assert main([*argv, "--no-progress"]) == 2
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and "run `cracksam predict" in lines[0], lines
    assert not (photos / "report").exists() and not (tmp_path / "rep").exists()
    # The masks of the same set are a folder of masks: inspected as before.
    assert main(["report", str(photos.parent / "masks"), "--out", str(tmp_path / "masks"), "--no-progress"]) == 0
    assert (tmp_path / "masks" / "report.html").is_file()


def test_severity_without_a_scale_is_labelled_pixel_based(tmp_path, capsys):
    masks = tmp_path / "masks"
    masks.mkdir()
    cv2.imwrite(str(masks / "wide_mask.png"), bar(300, 12, 0).astype(np.uint8) * 255)  # 12 px: "high" in pixel bands
    doc = build_survey(*discover_items(masks)[:1], tmp_path / "px")
    s = doc["summary"]
    assert s["worst_severity"] == "high" and s["severity_headline"] == "high (pixel bands; no scale given)"
    page = parse(tmp_path / "px" / "report.html")
    assert page.cards["severity_headline"][1].strip() == "high (pixel bands; no scale given)"
    assert "worst severity (pixel bands; no scale given)" in (tmp_path / "px" / "report.html").read_text()
    # The command's summary line says so too.
    assert main(["report", str(masks), "--out", str(tmp_path / "cli"), "--no-progress"]) == 0
    assert "worst severity high (pixel bands; no scale given)" in capsys.readouterr().err
    # With a scale the grade is in millimetres (ASTM bands): a bare label.
    scaled = build_survey(*discover_items(masks)[:1], tmp_path / "mm", SurveyOptions(mm_per_px=0.25))["summary"]
    assert scaled["severity_headline"] == scaled["worst_severity"] == "low"
    assert parse(tmp_path / "mm" / "report.html").cards["severity_headline"][1].strip() == "low"
