"""The survey report: one self-contained HTML file (inline CSS and JS, plots and thumbnails as
``data:`` URIs, links to the full-size overlays beside it), readable offline.

Every number shown carries the exact figure of ``inspection.json`` in its cell's ``data-value``;
the text is that figure rounded (:func:`fmt`).  The image table sorts on a click on its header.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

from cracksam.inspection.overlay import severity_colours
from cracksam.inspection.plots import survey_plots

__all__ = ["fmt", "render_report"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em auto;max-width:1200px;color:#222;
padding:0 1em}
h1{margin-bottom:.2em} .meta{color:#666;font-size:.9em}
.cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:9em}
.card .v{font-size:1.5em;font-weight:600}
.plots{display:flex;flex-wrap:wrap;gap:.6em;align-items:flex-start}
.plots img{width:calc(33% - .6em);min-width:260px;border:1px solid #eee}
table{border-collapse:collapse;margin:.5em 0 1.5em} th,td{border-bottom:1px solid #e3e3e3;padding:.3em .6em;
text-align:right;vertical-align:middle} th{background:#f6f6f6}
td.t,th.t{text-align:left} table.sortable th{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"} th[aria-sort=descending]::after{content:" \\25BC"}
.sev{display:inline-block;padding:0 .45em;border-radius:3px;color:#000}
img.thumb{max-height:120px;display:block} .note{background:#fff6d6;border-left:4px solid #e6b800;padding:.4em .8em}
section.image{border-top:2px solid #ddd;padding-top:.5em}
"""

_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener('click', function () {
      var asc = th.getAttribute('aria-sort') !== 'ascending';
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var numeric = th.dataset.type === 'number';
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.value, y = b.cells[col].dataset.value, r;
        if (numeric) { r = parseFloat(x) - parseFloat(y); } else { r = x.localeCompare(y); }
        return asc ? r : -r;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def fmt(value: Any, digits: int = 2) -> str:
    """The text of a number in the report: integers as they are, floats to ``digits`` decimals."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u2009")
    return f"{value:,.{digits}f}".replace(",", "\u2009")


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _num(value: Any, digits: int = 2, cls: str = "") -> str:
    data = "" if value is None else repr(value) if isinstance(value, float) else str(value)
    attr = f' class="{cls}"' if cls else ""
    return f'<td{attr} data-value="{_e(data)}">{_e(fmt(value, digits))}</td>'


def _txt(value: Any) -> str:
    return f'<td class="t" data-value="{_e(value or "")}">{_e(value if value is not None else "–")}</td>'


def _sev(label: str | None, colours: dict[str, str]) -> str:
    if label is None:
        return '<td class="t" data-value="">none</td>'
    return (f'<td class="t" data-value="{_e(label)}"><span class="sev" '
            f'style="background:{colours.get(label, "#ddd")}">{_e(label)}</span></td>')


def _card(title: str, value: Any, key: str, digits: int = 1) -> str:
    data = repr(value) if isinstance(value, float) else str(value)
    return (f'<div class="card"><div>{_e(title)}</div><div class="v" data-key="{_e(key)}" '
            f'data-value="{_e(data)}">{_e(fmt(value, digits))}</div></div>')


def render_report(doc: dict[str, Any], thumbs: dict[str, str]) -> str:
    """The HTML text of a survey document made by :func:`~cracksam.inspection.report_folder.build_survey`."""
    s = doc["summary"]
    unit, mm = s["unit"], s["unit"] == "mm"
    scheme = s["severity_scheme"]
    labels = [b["label"] for b in scheme["bands"]]
    colours = {label: "#{:02x}{:02x}{:02x}".format(*c)
               for label, c in zip(labels, severity_colours(len(labels)), strict=True)}
    plots = survey_plots(doc)
    u = "mm" if mm else "px"
    lk, wk, mk = f"length_{u}", f"mean_width_{u}", f"max_width_{u}"  # per crack
    tk = (f"total_length_{u}", f"mean_width_{u}", f"max_width_{u}")  # per image
    wd = 3 if mm else 2
    p: list[str] = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                    '<meta name="viewport" content="width=device-width, initial-scale=1">',
                    "<title>Crack inspection report</title>", f"<style>{_CSS}</style></head><body>",
                    "<h1>Crack inspection report</h1>",
                    f'<p class="meta">cracksam {_e(doc["cracksam_version"])} · {_e(doc["created"])} · '
                    f'pixel size: {_e(fmt(doc["options"]["mm_per_px"], 4) + " mm" if mm else "unknown (pixels)")} '
                    f'· severity: {_e(scheme["name"])} · travel direction '
                    f'{_e(fmt(doc["options"]["type_rules"]["direction_deg"], 1))}°</p>']
    if s.get("severity_note"):
        p.append(f'<p class="note">{_e(s["severity_note"])}</p>')
    if not mm:
        p.append('<p class="note">No pixel size given: lengths, widths and areas are in pixels.</p>')
    p.append('<h2>Summary</h2><div class="cards" id="summary">')
    p += [_card("images", s["images"], "images"), _card("failed", s["failed"], "failed"),
          _card("cracks", s["cracks"], "cracks"), _card(f"total length ({unit})", s["total_length"], "total_length"),
          _card(f"total area ({unit}²)", s["total_area"], "total_area"),
          _card("worst severity", s["severity_headline"], "severity_headline")]
    basis = f" ({s['severity_basis']})" if s.get("severity_basis") else ""  # pixel bands: never a bare "high"
    p.append(f'</div><h3>Images by worst severity{_e(basis)}</h3><table id="worst"><thead><tr><th class="t">'
             f"worst severity{_e(basis)}</th><th>images</th><th>share</th></tr></thead><tbody>")
    for label, count in s["images_by_worst_severity"].items():
        share = s["share_by_worst_severity"][label]
        p.append(f"<tr>{_sev(None if label == 'none' else label, colours)}{_num(count)}"
                 f'<td data-value="{share!r}">{share * 100:.1f} %</td></tr>')
    p.append("</tbody></table>")
    p.append(f'<p class="meta">Severity scheme <b>{_e(scheme["name"])}</b>: {_e("; ".join(scheme["rules"]))}. '
             f'Source: {_e(scheme["source"])}.</p>')
    p.append('<h2>Plots</h2><div class="plots">')
    for key, title in (("width_histogram", "width histogram"), ("length_by_type", "length by type"),
                       ("density", "crack density per image")):
        p.append(f'<img id="plot-{key}" alt="{_e(title)}" src="{plots[key]}">')
    p.append("</div>")
    heads = [("t", "", "image"), ("t", "", "name"), ("n", "", "cracks"), ("n", "", f"length ({unit})"),
             ("n", "", f"mean width ({unit})"), ("n", "", f"max width ({unit})"), ("n", "", s["density_label"]),
             ("t", "", f"worst severity{basis}"), ("t", "", "types")]
    p.append('<h2>Images</h2><table class="sortable" id="images"><thead><tr>')
    for kind, _, title in heads:
        p.append(f'<th class="{"t" if kind == "t" else ""}" data-type="{"text" if kind == "t" else "number"}">'
                 f"{_e(title)}</th>")
    p.append("</tr></thead><tbody>")
    for k, im in enumerate(doc["images"]):
        t, ins = im["totals"], im["inspection"]
        href = quote(im["overlay"])
        types = ", ".join(f"{n} {name}" for name, n in ins["types"].items() if n)
        p.append(f'<tr data-name="{_e(im["name"])}"><td class="t" data-value="{_e(im["name"])}">'
                 f'<a href="{href}"><img class="thumb" loading="lazy" alt="overlay of {_e(im["name"])}" '
                 f'src="{thumbs.get(im["name"], "")}"></a></td>'
                 f'<td class="t" data-value="{_e(im["name"])}"><a href="#img-{k}">{_e(im["name"])}</a></td>'
                 f'{_num(t["n_cracks"])}{_num(t[tk[0]], 1)}{_num(t[tk[1]], wd)}{_num(t[tk[2]], wd)}'
                 f'{_num(im["density"][s["density_key"]], 2)}{_sev(ins["worst_severity"], colours)}'
                 f"{_txt(types)}</tr>")
    p.append("</tbody></table>")
    if doc["errors"]:
        p.append('<h2>Not inspected</h2><ul id="errors">')
        p += [f"<li><b>{_e(e['name'])}</b>: {_e(e['error'])}</li>" for e in doc["errors"]]
        p.append("</ul>")
    p.append("<h2>Cracks per image</h2>")
    for k, im in enumerate(doc["images"]):
        gps = im.get("gps") or {}
        where = (f" · GPS {gps['latitude']:.6f}, {gps['longitude']:.6f}" if "latitude" in gps else "") + (
            f" · {gps['datetime']}" if "datetime" in gps else "")
        p.append(f'<section class="image" id="img-{k}" data-name="{_e(im["name"])}"><h3>{_e(im["name"])}</h3>'
                 f'<p class="meta">{im["image_size"]["width"]}×{im["image_size"]["height"]} px{_e(where)} · '
                 f'<a href="{quote(im["overlay"])}">full-size overlay</a> · '
                 f'<a href="{quote(im["geojson"])}">GeoJSON</a></p>')
        if not im["cracks"]:
            p.append("<p>No cracks.</p></section>")
            continue
        p.append('<table class="sortable cracks"><thead><tr><th data-type="number">id</th>'
                 '<th class="t" data-type="text">type</th>'
                 f'<th data-type="number">length ({unit})</th><th data-type="number">mean width ({unit})</th>'
                 f'<th data-type="number">max width ({unit})</th><th data-type="number">angle to direction (°)</th>'
                 '<th class="t" data-type="text">severity</th></tr></thead><tbody>')
        for c in im["cracks"]:
            p.append(f'<tr data-id="{c["id"]}">{_num(c["id"])}{_txt(c["type"])}{_num(c[lk], 1)}{_num(c[wk], wd)}'
                     f'{_num(c[mk], wd)}{_num(c["angle_to_direction_deg"], 1)}{_sev(c["severity"], colours)}</tr>')
        p.append("</tbody></table></section>")
    p.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(p) + "\n"
