"""``cracksam report``: a folder of results to an offline HTML report, COCO, GeoJSON and CSV."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cracksam.cli.inputs import output_dir
from cracksam.cli.tree import Alias, as_str, command_params, make_command, resolve_tree, switch
from cracksam.cli.tree import print_config as show_config
from cracksam.errors import ConfigError

if TYPE_CHECKING:
    from cracksam.cli.report_config import ReportConfig

HELP = (
    "Inspect a folder of results: crack types and severity, an offline HTML report and exports.\n\n"
    "FOLDER: what `cracksam predict` wrote (its summary.json names each mask's photo), or any folder "
    "of masks (*_mask.png, else every image in it); --images finds the photos by file stem.\n\n"
    "Writes to --out (default FOLDER/report): report.html, inspection.json, cracks.csv, images.csv, "
    "coco.json, geojson/<name>.geojson, photos.geojson (photos with EXIF GPS) and overlays/<name>.png."
    "\n\nSeverity schemes: astm-d6433 (asphalt, mean width, default), concrete (EN 1992 0.2/0.3 mm, "
    "max width), pixels, or a JSON/YAML file; without a pixel size the pixel bands are used, and "
    "the report says so.  Masks that cannot be read are listed in the report; the exit code is then 1."
    "\n\nEvery option is also a config key: --config, --set KEY=VALUE, CRACKSAM_REPORT__* (--help-config)."
)


# Every flag is a ReportConfig key (see cracksam.cli.tree: defaults < --config < CRACKSAM_REPORT__* <
# --set < flags).
ALIASES: dict[str, Alias] = {
    "folder": Alias("folder", Path | None, typer.Argument(
        None, metavar="FOLDER", show_default=False, help="Folder of results (predict --out) or of masks."), as_str),
    "out": Alias("out", Path | None, typer.Option(
        None, "--out", "-o", help="Output folder (default FOLDER/report)."), as_str),
    "images": Alias("images", Path | None, typer.Option(
        None, "--images", help="Folder of the photos (matched by file stem)."), as_str),
    "mm_per_px": Alias("mm_per_px", float | None, typer.Option(None, "--mm-per-px", help="Pixel size in millimetres.")),
    "ref_points": Alias("ref_points", str | None, typer.Option(
        None, "--ref-points", metavar="X1,Y1,X2,Y2", help="Two pixel points on a reference object.")),
    "ref_length_mm": Alias("ref_length_mm", float | None, typer.Option(
        None, "--ref-length-mm", help="Real length between --ref-points (mm).")),
    "min_length": Alias("min_length", float | None, typer.Option(
        None, "--min-length", help="Discard cracks shorter than this (px; default 10).")),
    "direction": Alias("direction", float | None, typer.Option(
        None, "--direction", help="Travel direction, degrees counter-clockwise from the image's horizontal "
        "(90 = up the image, the default).")),
    "tolerance": Alias("tolerance", float | None, typer.Option(
        None, "--tolerance", help="Longitudinal/transverse within this many degrees, else diagonal (default 30).")),
    "short_length": Alias("short_length", float | None, typer.Option(
        None, "--short-length", help="Isolated cracks shorter than this (px) are 'isolated_short' (default 50).")),
    "severity": Alias("severity", str | None, typer.Option(
        None, "--severity", help="Severity scheme name or JSON/YAML file (default astm-d6433).")),
    "json_out": switch("json", "--json/--no-json", "Print the survey summary as JSON."),
    "progress": switch("progress", "--progress/--no-progress", "Progress bar (default) or none."),
}

PARAMS = command_params(ALIASES, "min_length=20")


def resolve_config(values: dict[str, Any], environ: Mapping[str, str] | None = None) -> ReportConfig:
    """The command's config from ``--config``, the environment, ``--set`` and the flags."""
    from cracksam.cli.report_config import ReportConfig

    cfg, _ = resolve_tree(ReportConfig, "report", ALIASES, values, environ=environ)
    return cfg


def report(print_config: bool, **values: Any) -> None:
    cfg = resolve_config(values)  # every check that needs no file has run here, once
    if print_config:
        show_config(cfg)
        return
    if cfg.folder is None:
        raise ConfigError("missing FOLDER: a folder of results or masks (or folder in --config)")
    from cracksam.cli.measure import _resolve_scale
    from cracksam.inspection import TypeRules, load_scheme
    from cracksam.inspection.report_folder import SurveyOptions, discover_items

    scale = _resolve_scale(cfg.mm_per_px, cfg.ref_points, cfg.ref_length_mm)
    load_scheme(cfg.severity)  # a bad scheme is an error before any work
    folder = Path(cfg.folder)
    items, problems = discover_items(folder, Path(cfg.images) if cfg.images is not None else None)
    out = output_dir(Path(cfg.out) if cfg.out is not None else folder / "report")
    options = SurveyOptions(mm_per_px=scale, min_length_px=cfg.min_length, severity=cfg.severity,
                            rules=TypeRules(direction_deg=cfg.direction, tolerance_deg=cfg.tolerance,
                                            short_length_px=cfg.short_length))
    summary = run_report(items, out, options, problems, quiet=cfg.json, no_progress=not cfg.progress)
    if cfg.json:
        typer.echo(json.dumps(summary, indent=2))
    if summary["failed"]:
        raise typer.Exit(1)


def run_report(items, out: Path, options, problems, quiet: bool = False, no_progress: bool = False) -> dict:
    """:func:`build_survey` with a progress bar on stderr and a one-line result; returns the summary."""
    from rich.console import Console

    from cracksam.inspection.report_folder import build_survey
    from cracksam.progress_bar import progress_bar

    console = Console(stderr=True, soft_wrap=True)
    progress = progress_bar(console, enabled=not (no_progress or quiet))
    with progress:
        task = progress.add_task("inspecting", total=len(items))
        doc = build_survey(items, out, options, problems, progress=lambda _name: progress.advance(task))
    for err in doc["errors"]:
        console.print(f"[red]error[/red]: {err['name']}: {err['error']}", highlight=False)
    s = doc["summary"]
    if not quiet:
        console.print(f"{s['images']} image(s) inspected, {s['failed']} failed, {s['cracks']} crack(s), "
                      f"total length {s['total_length']:.1f} {s['unit']}, worst severity {s['severity_headline']}; "
                      f"report: {out / 'report.html'}",
                      highlight=False)
        if s["severity_note"]:
            console.print(s["severity_note"], style="dim", highlight=False)
    return s


def report_predictions(rows: list[dict[str, Any]], out: Path, mm_per_px: float | None, min_length: float,
                       quiet: bool = False, no_progress: bool = False) -> str:
    """``predict --report``: the report of the masks predict has written into ``out`` (``rows``:
    each mask and its photo, :func:`~cracksam.inspection.report_folder.predicted_items`), in
    ``out/report``; returns the path of its ``report.html``."""
    from cracksam.inspection.report_folder import SurveyOptions, predicted_items

    run_report(predicted_items(rows), out / "report", SurveyOptions(mm_per_px=mm_per_px, min_length_px=min_length),
               [], quiet=quiet, no_progress=no_progress)
    return str(out / "report" / "report.html")


def register(app: typer.Typer) -> None:
    app.command("report", help=HELP)(make_command("report", HELP, PARAMS, report))
