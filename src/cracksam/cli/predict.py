"""``cracksam predict``: crack masks for photos, folders or globs, with any runtime."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from cracksam import __version__
from cracksam.cli.inputs import expand_inputs, output_dir, unique_stem
from cracksam.cli.options import (
    DEFAULT_MODEL_NAME,
    MODEL_HELP,
    RANDOM_BASE_HELP,
    RUNTIME_ENV,
    RUNTIME_HELP,
    model_path_option,
    trust_option,
)
from cracksam.errors import ConfigError, CrackSAMError
from cracksam.inference_modes import DEFAULT_WINDOW, MODE_HELP, SCALE_HELP, check_options
from cracksam.survey.cli import ENGINE_HELP, survey_command

DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: above any phone or drone camera, below a decompression bomb
MIN_LENGTH = 10.0  # px: shorter skeleton branches are noise, not cracks


def predict(
    inputs: list[str] = typer.Argument(None, metavar="INPUT", show_default=False,
                                       help="Image files, folders or glob patterns (quoted)."),
    model: str = typer.Option(DEFAULT_MODEL_NAME, "--model", "-m", help=MODEL_HELP),
    out: Path = typer.Option(Path("predictions"), "--out", "-o", help="Output folder."),
    base: str | None = typer.Option(None, "--base", help="SAM base checkpoint for a delta checkpoint."),
    allow_random_base: bool = typer.Option(False, "--allow-random-base", help=RANDOM_BASE_HELP),
    trust: bool = trust_option(),
    mode: str | None = typer.Option(None, "--mode", help=MODE_HELP),
    scale: float | None = typer.Option(None, "--scale", help=SCALE_HELP),
    window: int = typer.Option(DEFAULT_WINDOW, "--window",
                               help="Native mode: largest side run in one forward pass, window size above it."),
    overlap: float = typer.Option(0.25, help="Window overlap fraction (tile and native windows)."),
    threshold: float = typer.Option(0.5, help="Crack probability threshold."),
    batch_size: int = typer.Option(4, help="Images or windows per forward pass."),
    device: str = typer.Option("cpu", help="cpu or cuda (PyTorch), CPU/GPU (OpenVINO)."),
    threads: int | None = typer.Option(None, help="CPU threads of the runtime (default: every core)."),
    runtime: str = typer.Option("auto", "--runtime", envvar=RUNTIME_ENV, help=RUNTIME_HELP),
    in_flight: int = typer.Option(1, "--in-flight", help="Batches of windows run at once (throughput mode)."),
    overlay: bool = typer.Option(False, "--overlay", help="Also write <stem>_overlay.png."),
    prob: bool = typer.Option(False, "--prob", help="Also write the crack probability map <stem>_prob.png (0-255)."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, help="Refuse images with more pixels than this."),
    measure: bool = typer.Option(False, "--measure", help="Measure crack length/width/area on each mask."),
    mm_per_px: float | None = typer.Option(None, "--mm-per-px", help="Pixel size in mm (with --measure)."),
    min_length: float | None = typer.Option(None, "--min-length",
                                            help=f"Shortest crack kept by --measure, px (default {MIN_LENGTH:g})."),
    report: bool = typer.Option(False, "--report", help="Also inspect the masks: crack types, severity, HTML "
                                "report, COCO/GeoJSON/CSV in OUT/report (options: `cracksam report`)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
    engine: str = typer.Option("plain", "--engine", help=ENGINE_HELP),
    address: str | None = typer.Option(None, "--address", help="Ray cluster (auto, ray://head:10001); default: local."),
    workers: int | None = typer.Option(None, "--workers", help="Ray workers, each loading the model once "
                                       "(default: one per CPU / --threads)."),
    manifest: Path | None = typer.Option(None, "--manifest", help="CSV/Parquet: one image path per row "
                                         "(column path/image/file); other columns are carried to the table."),
    path_column: str | None = typer.Option(None, "--path-column", help="The manifest's image path column."),
    table: bool = typer.Option(False, "--table", help="Write results.parquet (resumable) with the plain engine."),
    csv: bool = typer.Option(False, "--csv", help="Also write the results table as results.csv."),
) -> None:
    """Segment cracks; writes <stem>_mask.png (0/255, same size as the input) per image and summary.json.

    Unreadable or invalid files are reported by name and skipped; the exit code is then 1.
    """
    import numpy as np
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from cracksam._files import atomic_write_bytes, atomic_write_text, encode_mask_png, encode_png
    from cracksam.data.io import read_image
    from cracksam.deployment.runtime_cache import describe_choice, open_predictor
    from cracksam.evaluation.visualize import overlay as blend
    from cracksam.inference.options import PredictOptions
    from cracksam.measurement.files import write_measurement as _measure
    from cracksam.service.inference import model_id_for
    from cracksam.threads import resolve_threads

    check_options(mode, scale)
    threads_option, threads = threads, resolve_threads(threads)
    if not (measure or report) and (mm_per_px is not None or min_length is not None):
        given = " and ".join(o for o, v in (("--mm-per-px", mm_per_px), ("--min-length", min_length)) if v is not None)
        raise ConfigError(f"{given} only apply with --measure or --report; add one (or drop them)")
    min_length = MIN_LENGTH if min_length is None else min_length
    if max_pixels < 1:
        raise ConfigError(f"--max-pixels must be >= 1, got {max_pixels}")
    if mm_per_px is not None and (mm_per_px <= 0 or not np.isfinite(mm_per_px)):
        raise ConfigError(f"--mm-per-px must be a positive number, got {mm_per_px}")
    options = PredictOptions(model=str(model_path_option(model)), base=base, device=device, threads=threads,
                             allow_random_base=allow_random_base, trust=trust, runtime=runtime, mode=mode,
                             scale=scale, window=window, tile_overlap=overlap, batch_size=batch_size,
                             threshold=threshold, in_flight=in_flight)
    if engine != "plain" or manifest is not None or table or csv or path_column is not None:
        # The same options as the plain predict: --runtime auto builds the runtime cache once in
        # the driver (survey_command opens the model there first), so local Ray workers find it built.
        return survey_command(  # the results table, resumable, on this process or Ray (cracksam.survey)
            inputs=inputs or [], manifest=manifest, path_column=path_column, engine=engine, address=address,
            workers=workers, threads=threads_option, csv=csv, model=model, model_path=model_path_option(model),
            predict_options=options,
            image_options=dict(threshold=threshold, overlay=overlay, prob=prob, measure=measure,
                               mm_per_px=mm_per_px, min_length=min_length, max_pixels=max_pixels),
            report=report, out=out, json_out=json_out, no_progress=no_progress)
    files, problems = expand_inputs(inputs or [])
    if not files and not problems:
        raise ConfigError("no input images")
    model_path = model_path_option(model)
    console = Console(stderr=True, soft_wrap=True)  # error lines must not be cut at the terminal width
    announce = None if json_out else (lambda text: console.print(text, highlight=False))
    predictor = open_predictor(options, announce)
    output_dir(out)
    if not json_out:
        console.print(f"inference: {predictor.inference_summary()}; {threads} CPU thread(s)", highlight=False)
        console.print(describe_choice(predictor.runtime_info), highlight=False)
    for name, problem in problems:
        console.print(f"[red]error[/red]: {name}: {problem}")

    rows: list[dict[str, Any]] = []
    used: set[str] = set()
    start = time.perf_counter()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=no_progress,
        transient=True,
    )
    with progress:
        task = progress.add_task("segmenting", total=len(files))
        for path in files:
            row: dict[str, Any] = {"file": str(path)}
            written: list[str] = []  # what this image left on disk, whatever happens after

            def put(target: Path, data: bytes, written: list[str] = written) -> None:
                atomic_write_bytes(target, data)
                written.append(str(target))

            t0 = time.perf_counter()
            try:
                image = read_image(path, max_pixels=max_pixels)
                pred = predictor.predict_one(image)
                mask = pred.mask(threshold)
                stem = unique_stem(path, used)
                h, w = mask.shape
                crack = int(mask.sum())
                put(out / f"{stem}_mask.png", encode_mask_png(mask))
                row.update(mask=str(out / f"{stem}_mask.png"), width=w, height=h, crack_pixels=crack,
                           crack_fraction=crack / (h * w))
                if overlay:
                    rgb = blend(image, mask, (255, 40, 40), 0.7)
                    put(out / f"{stem}_overlay.png", encode_png(rgb))
                if prob:
                    put(out / f"{stem}_prob.png", encode_png(np.round(pred.prob * 255).astype(np.uint8)))
                if measure:
                    row["measurement"] = _measure(mask, image, out, stem, mm_per_px, min_length, written)
            except CrackSAMError as exc:
                row["error"] = str(exc)
                console.print(f"[red]error[/red]: {exc}")
            except OSError as exc:  # a write failure (full disk, permissions): the message names the file
                where = exc.filename or path
                row["error"] = f"{path}: cannot write {where}: {exc.strerror or exc}"
                console.print(f"[red]error[/red]: {row['error']}")
            except (ValueError, MemoryError) as exc:  # an odd image: skip it
                row["error"] = f"{path}: {type(exc).__name__}: {exc}"
                console.print(f"[red]error[/red]: {row['error']}")
            if written:
                row["written"] = written
            row["seconds"] = round(time.perf_counter() - t0, 4)
            rows.append(row)
            progress.advance(task)
    total = time.perf_counter() - start
    ok = [r for r in rows if "error" not in r]
    failed = [r for r in rows if "error" in r] + [{"file": n, "error": p} for n, p in problems]
    summary = {
        "model": model,
        # What ran, exactly: the file behind "default", and the id the service would report for it.
        "model_path": str(model_path),
        "model_id": model_id_for(predictor.describe(), model_path),
        "cracksam_version": __version__,
        "threads": threads,
        "predictor": predictor.describe(),
        "runtime": predictor.runtime_info,
        "images": len(ok),  # segmented with every output written
        "failed": len(failed),
        # Failed images that still left files (a mask written before the disk filled): counted, not hidden.
        "partial": sum(1 for r in rows if "error" in r and r.get("written")),
        "files_written": sum(len(r.get("written", [])) for r in rows),
        "crack_pixels": sum(r["crack_pixels"] for r in ok),
        "seconds_per_image": (sum(r["seconds"] for r in ok) / len(ok)) if ok else None,
        "total_seconds": round(total, 3),
        "results": rows,
        "errors": failed,
    }
    if report:
        summary["report"] = _report(ok, out, mm_per_px, min_length, quiet=json_out, no_progress=no_progress)
    try:
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
        summary_error = None
    except OSError as exc:  # still say what was done: the masks on disk are real
        summary_error = f"cannot write {exc.filename or out / 'summary.json'}: {exc.strerror or exc}"
    if json_out:
        typer.echo(json.dumps(summary, indent=2))
    else:
        per = f"{summary['seconds_per_image']:.3f} s/image" if ok else "-"
        partial = f" ({summary['partial']} of them left some outputs)" if summary["partial"] else ""
        console.print(
            f"{len(ok)} image(s) segmented, {len(failed)} failed{partial}, {summary['files_written']} file(s) "
            f"written, {summary['crack_pixels']} crack pixels, {per}; outputs in {out}"
        )
    if summary_error is not None:
        console.print(f"[red]error[/red]: {summary_error}")
    if failed or summary_error is not None:
        raise typer.Exit(1)


def _report(ok: list[dict[str, Any]], out: Path, mm_per_px, min_length: float, quiet: bool,
            no_progress: bool) -> str:
    from cracksam.cli.report import run_survey
    from cracksam.inspection.survey import SurveyItem, SurveyOptions

    items = [SurveyItem(Path(r["mask"]).name.removesuffix("_mask.png"), Path(r["mask"]), Path(r["file"])) for r in ok]
    run_survey(items, out / "report", SurveyOptions(mm_per_px=mm_per_px, min_length_px=min_length), [],
               quiet=quiet, no_progress=no_progress)
    return str(out / "report" / "report.html")


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
