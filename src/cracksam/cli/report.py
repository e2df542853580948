"""``cracksam report``: a folder of results to an offline HTML report, COCO, GeoJSON and CSV."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from cracksam.cli.inputs import output_dir
from cracksam.errors import ConfigError

HELP = (
    "Inspect a folder of results: crack types and severity, an offline HTML report and exports.\n\n"
    "FOLDER: what `cracksam predict` wrote (its summary.json names each mask's photo), or any folder "
    "of masks (*_mask.png, else every image in it); --images finds the photos by file stem.\n\n"
    "Writes to --out (default FOLDER/report): report.html, inspection.json, cracks.csv, images.csv, "
    "coco.json, geojson/<name>.geojson, photos.geojson (photos with EXIF GPS) and overlays/<name>.png."
    "\n\nSeverity schemes: astm-d6433 (asphalt, mean width, default), concrete (EN 1992 0.2/0.3 mm, "
    "max width), pixels, or a JSON/YAML file; without a pixel size the pixel bands are used, and "
    "the report says so.  Masks that cannot be read are listed in the report; the exit code is then 1."
)


def report(
    folder: Path = typer.Argument(..., metavar="FOLDER", help="Folder of results (predict --out) or of masks."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default FOLDER/report)."),
    images: Path | None = typer.Option(None, "--images", help="Folder of the photos (matched by file stem)."),
    mm_per_px: float | None = typer.Option(None, "--mm-per-px", help="Pixel size in millimetres."),
    ref_points: str | None = typer.Option(None, "--ref-points", metavar="X1,Y1,X2,Y2",
                                          help="Two pixel points on a reference object."),
    ref_length_mm: float | None = typer.Option(None, "--ref-length-mm",
                                               help="Real length between --ref-points (mm)."),
    min_length: float = typer.Option(10.0, "--min-length", help="Discard cracks shorter than this (px)."),
    direction: float = typer.Option(90.0, "--direction",
                                    help="Travel direction, degrees counter-clockwise from the image's "
                                         "horizontal (90 = up the image)."),
    tolerance: float = typer.Option(30.0, "--tolerance",
                                    help="Longitudinal/transverse within this many degrees, else diagonal."),
    short_length: float = typer.Option(50.0, "--short-length", help="Isolated cracks shorter than this (px) "
                                       "are 'isolated_short'."),
    severity: str = typer.Option("astm-d6433", "--severity", help="Severity scheme name or JSON/YAML file."),
    json_out: bool = typer.Option(False, "--json", help="Print the survey summary as JSON."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    from cracksam.cli.measure import _resolve_scale
    from cracksam.inspection import TypeRules, load_scheme
    from cracksam.inspection.survey import SurveyOptions, discover_items

    scale = _resolve_scale(mm_per_px, ref_points, ref_length_mm)
    if not math.isfinite(min_length) or min_length < 0:
        raise ConfigError(f"--min-length must be >= 0 px, got {min_length:g}")
    for option, value in (("--direction", direction), ("--tolerance", tolerance), ("--short-length", short_length)):
        if not math.isfinite(value):
            raise ConfigError(f"{option} must be a finite number, got {value}")
    if not 0 <= tolerance <= 45:
        raise ConfigError(f"--tolerance must be between 0 and 45 degrees, got {tolerance:g}")
    if short_length < 0:
        raise ConfigError(f"--short-length must be >= 0 px, got {short_length:g}")
    load_scheme(severity)  # a bad scheme is an error before any work
    items, problems = discover_items(folder, images)
    out = output_dir(out if out is not None else Path(folder) / "report")
    options = SurveyOptions(mm_per_px=scale, min_length_px=min_length, severity=severity,
                            rules=TypeRules(direction_deg=direction, tolerance_deg=tolerance,
                                            short_length_px=short_length))
    summary = run_survey(items, out, options, problems, quiet=json_out, no_progress=no_progress)
    if json_out:
        typer.echo(json.dumps(summary, indent=2))
    if summary["failed"]:
        raise typer.Exit(1)


def run_survey(items, out: Path, options, problems, quiet: bool = False, no_progress: bool = False) -> dict:
    """:func:`build_survey` with a progress bar on stderr and a one-line result; returns the summary."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from cracksam.inspection.survey import build_survey

    console = Console(stderr=True, soft_wrap=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=console, disable=no_progress or quiet, transient=True)
    with progress:
        task = progress.add_task("inspecting", total=len(items))
        doc = build_survey(items, out, options, problems, progress=lambda _name: progress.advance(task))
    for err in doc["errors"]:
        console.print(f"[red]error[/red]: {err['name']}: {err['error']}", highlight=False)
    s = doc["summary"]
    if not quiet:
        console.print(f"{s['images']} image(s) inspected, {s['failed']} failed, {s['cracks']} crack(s), "
                      f"total length {s['total_length']:.1f} {s['unit']}; report: {out / 'report.html'}",
                      highlight=False)
        if s["severity_note"]:
            console.print(s["severity_note"], style="dim", highlight=False)
    return s


def register(app: typer.Typer) -> None:
    app.command("report", help=HELP)(report)
