"""``cracksam measure``: crack length, width and area from binary masks."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cracksam.cli.inputs import output_dir
from cracksam.cli.tree import Alias, as_str, command_params, make_command, resolve_tree, switch
from cracksam.cli.tree import print_config as show_config
from cracksam.errors import ConfigError, CrackSAMError

if TYPE_CHECKING:
    from cracksam.cli.measure_config import MeasureConfig

HELP = (
    "Measure the cracks of binary masks: length, mean/median/max width, area, orientation.\n\n"
    "MASK: files, folders (their images, not recursive) or glob patterns (quote them). "
    "A folder written by `cracksam predict` is measured by its <stem>_mask.png files only (not the "
    "overlays and probability maps beside them). A pixel is crack when any channel is > 0; images that "
    "are not binary masks (photos, probability maps) are refused unless --threshold is given.\n\n"
    "With --out DIR, writes for each mask <stem>_measure.json, <stem>_cracks.csv and <stem>_measure.png "
    "(the names `predict --measure` uses), and summary.csv with one row per mask.\n\n"
    "--json prints the report to stdout: one object when a single mask file is named, else an array."
    "\n\nMasks that cannot be read are reported and skipped; the exit code is then 1."
    "\n\nEvery option is also a config key: --config, --set KEY=VALUE, CRACKSAM_MEASURE__* (--help-config)."
)


REPORT_SUFFIX = "_measure.json"  # <stem>_measure.json, as `predict --measure` writes it
PREDICT_MASK_SUFFIX = "_mask.png"  # what `cracksam predict` names its masks


def _collect_masks(patterns: list[str]) -> tuple[list[Path], list[tuple[str, str]], list[tuple[str, int]]]:
    """The mask files named by ``patterns``, problems, and (folder, skipped) for folders holding
    ``predict`` output: there only ``*_mask.png`` are masks, the overlays and probability maps next
    to them are not (measured, an overlay is one crack as wide as the photo)."""
    from cracksam.data.inputs import expand_inputs

    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    skipped: list[tuple[str, int]] = []
    seen: set[Path] = set()
    for pattern in patterns:
        found, trouble = expand_inputs([pattern])
        problems.extend(trouble)
        if Path(pattern).is_dir():
            masks_only = [p for p in found if p.name.endswith(PREDICT_MASK_SUFFIX)]
            if masks_only and len(masks_only) < len(found):
                skipped.append((pattern, len(found) - len(masks_only)))
                found = masks_only
        for path in found:
            if path.resolve() not in seen:
                seen.add(path.resolve())
                files.append(path)
    return files, problems, skipped


def _parse_points(text: str) -> tuple[tuple[float, float], tuple[float, float]]:
    from cracksam.cli.measure_config import parse_points

    return parse_points(text)


def _resolve_scale(mm_per_px: float | None, ref_points: str | None, ref_length_mm: float | None) -> float | None:
    from cracksam.measurement import scale_from_points

    if mm_per_px is not None and (ref_points is not None or ref_length_mm is not None):
        raise CrackSAMError("--mm-per-px and --ref-points/--ref-length-mm are mutually exclusive: give one scale")
    if (ref_points is None) != (ref_length_mm is None):
        raise CrackSAMError("--ref-points and --ref-length-mm go together: give both or neither")
    if mm_per_px is not None:
        if not math.isfinite(mm_per_px) or mm_per_px <= 0:
            raise CrackSAMError(f"--mm-per-px must be a positive number, got {mm_per_px:g}")
        return mm_per_px
    if ref_points is not None and ref_length_mm is not None:
        p1, p2 = _parse_points(ref_points)
        return scale_from_points(p1, p2, ref_length_mm)
    return None


def _error(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)


def _fmt(px: float, mm: float | None, digits: int = 1) -> str:
    text = f"{px:.{digits}f}"
    return text + (f" ({mm:.{max(digits, 2)}f})" if mm is not None else "")


# Every flag is a MeasureConfig key (see cracksam.cli.tree: defaults < --config < CRACKSAM_MEASURE__* <
# --set < flags).
ALIASES: dict[str, Alias] = {
    "masks": Alias("masks", list[str] | None, typer.Argument(
        None, metavar="MASK", show_default=False, help="Mask files, folders or glob patterns.")),
    "mm_per_px": Alias("mm_per_px", float | None, typer.Option(None, "--mm-per-px", help="Pixel size in millimetres.")),
    "ref_points": Alias("ref_points", str | None, typer.Option(
        None, "--ref-points", metavar="X1,Y1,X2,Y2", help="Two pixel points on a reference object.")),
    "ref_length_mm": Alias("ref_length_mm", float | None, typer.Option(
        None, "--ref-length-mm", help="Real length of the reference object between --ref-points (mm).")),
    "min_length": Alias("min_length", float | None, typer.Option(
        None, "--min-length", help="Discard cracks shorter than this (px; default 10).")),
    "threshold": Alias("threshold", float | None, typer.Option(
        None, "--threshold", metavar="FRACTION",
        help="Binarise images that are not binary masks: crack above this share of full scale (0.5 = 128 of "
        "255), e.g. a predict <stem>_prob.png. Default: only binary masks are measured.")),
    "out": Alias("out", Path | None, typer.Option(
        None, "--out", "-o", help="Folder for the JSON, CSV and PNG outputs."), as_str),
    "image": Alias("image", Path | None, typer.Option(
        None, "--image", help="Photo to draw the annotation on (one mask only; same size)."), as_str),
    "json_out": switch("json", "--json/--no-json", "Print the JSON report(s) to stdout."),
}

PARAMS = command_params(ALIASES, "min_length=20")


def resolve_config(values: dict[str, Any], environ: Mapping[str, str] | None = None) -> MeasureConfig:
    """The command's config from ``--config``, the environment, ``--set`` and the flags."""
    from cracksam.cli.measure_config import MeasureConfig

    cfg, _ = resolve_tree(MeasureConfig, "measure", ALIASES, values, environ=environ)
    return cfg


def measure(print_config: bool, **values: Any) -> None:
    cfg = resolve_config(values)  # every check that needs no file has run here, once
    if print_config:
        show_config(cfg)
        return
    if not cfg.masks:
        raise ConfigError("missing MASK: mask files, folders or glob patterns (or masks in --config)")
    masks, min_length, threshold, json_out = cfg.masks, cfg.min_length, cfg.threshold, cfg.json
    out = Path(cfg.out) if cfg.out is not None else None
    image = Path(cfg.image) if cfg.image is not None else None
    from rich.console import Console
    from rich.table import Table

    from cracksam.data.inputs import unique_stem
    from cracksam.measurement import (
        measure_mask,
        read_binary_mask,
        read_image,
        render_annotation,
        resolution_note,
        result_to_dict,
        summary_row,
        write_csv,
        write_json,
        write_png,
        write_summary_csv,
    )

    scale = _resolve_scale(cfg.mm_per_px, cfg.ref_points, cfg.ref_length_mm)

    files, problems, skipped = _collect_masks(masks)
    if image is not None and (len(files) != 1 or problems or len(masks) != 1):
        raise CrackSAMError("--image can only be used with exactly one mask file")
    photo = read_image(image) if image is not None else None
    if out is not None:  # after the checks above: a refused run leaves no folder behind
        output_dir(out)

    console = Console(stderr=json_out)
    failed = 0
    reports: list[dict] = []
    summary: list[dict] = []
    for folder, count in skipped:
        console.print(f"{folder}: measuring its *_mask.png files only ({count} other image(s) skipped)",
                      style="dim", highlight=False)
    for name, problem in problems:
        _error(f"{name}: {problem}")
        summary.append(summary_row(name, None, error=problem))
        failed += 1

    table = Table(title="Crack measurement", title_justify="left")
    unit = " px (mm)" if scale is not None else " px"
    table.add_column("mask", overflow="fold")
    table.add_column("cracks", justify="right")
    table.add_column("length" + unit, justify="right")
    table.add_column("mean width" + unit, justify="right")
    table.add_column("max width" + unit, justify="right")
    used_stems: set[str] = set()
    for path in files:
        source = str(path)
        try:
            mask = read_binary_mask(path, threshold=threshold)
            if photo is not None and photo.shape[:2] != mask.shape:
                raise CrackSAMError(
                    f"--image {image} is {photo.shape[1]}x{photo.shape[0]} px but mask {path} is "
                    f"{mask.shape[1]}x{mask.shape[0]} px"
                )
            result = measure_mask(mask, mm_per_px=scale, min_length_px=min_length)
        except CrackSAMError as exc:
            if photo is not None:
                raise
            _error(str(exc))
            summary.append(summary_row(source, None, error=str(exc)))
            failed += 1
            continue
        reports.append(result_to_dict(result, source))
        summary.append(summary_row(source, result))
        if out is not None:
            stem = unique_stem(path, used_stems)
            try:
                write_json(result, out / f"{stem}{REPORT_SUFFIX}", source)
                write_csv(result, out / f"{stem}_cracks.csv", source)
                picture = render_annotation(photo if photo is not None else mask, result)
                write_png(out / f"{stem}_measure.png", picture)
            except OSError as exc:
                raise CrackSAMError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
        t = result.totals
        table.add_row(
            source,
            str(t.n_cracks),
            _fmt(t.total_length_px, t.total_length_mm),
            _fmt(t.mean_width_px, t.mean_width_mm),
            _fmt(t.max_width_px, t.max_width_mm),
        )

    if out is not None:
        try:
            write_summary_csv(out / "summary.csv", summary)
        except OSError as exc:
            raise CrackSAMError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    if reports:
        console.print(table)
        console.print(resolution_note(scale), style="dim", highlight=False)
        if out is not None:
            console.print(f"reports written to {out}", highlight=False)
    if json_out:
        single = len(masks) == 1 and len(files) == 1 and not Path(masks[0]).is_dir() and not problems
        if not single:
            typer.echo(json.dumps(reports, indent=2))
        elif reports:
            typer.echo(json.dumps(reports[0], indent=2))
    if failed:
        _error(f"{failed} mask(s) failed, {len(reports)} measured")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("measure", help=HELP)(make_command("measure", HELP, PARAMS, measure))
