"""``cracksam predict``: crack masks for photos, folders or globs, with any runtime."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cracksam import __version__
from cracksam.cli.inputs import output_dir
from cracksam.cli.options import DEFAULT_MODEL_NAME
from cracksam.cli.predictor_flags import predictor_aliases, runtime_env_alias
from cracksam.cli.survey import ENGINE_HELP, survey_command
from cracksam.cli.tree import Alias, as_str, command_params, make_command, resolve_tree, switch
from cracksam.cli.tree import print_config as show_config
from cracksam.errors import ConfigError, CrackSAMError

if TYPE_CHECKING:
    from cracksam.cli.predict_config import PredictConfig
    from cracksam.survey.outputs import ImageOptions


# Every flag is a PredictConfig key (see cracksam.cli.tree: defaults < --config < CRACKSAM_RUNTIME <
# CRACKSAM_PREDICT__* < --set < flags); --threshold etc. are keys of its predictor section.
ALIASES: dict[str, Alias] = {
    "inputs": Alias("inputs", list[str] | None, typer.Argument(
        None, metavar="INPUT", show_default=False, help="Image files, folders or glob patterns (quoted).")),
    **predictor_aliases(),
    "out": Alias("out", Path | None, typer.Option(None, "--out", "-o", help="Output folder (default predictions)."),
                 as_str),
    "overlay": switch("overlay", "--overlay/--no-overlay", "Also write <stem>_overlay.png."),
    "prob": switch("prob", "--prob/--no-prob", "Also write the crack probability map <stem>_prob.png (0-255)."),
    "max_pixels": Alias("max_pixels", int | None, typer.Option(
        None, "--max-pixels", help="Refuse images with more pixels than this (default 100000000).")),
    "measure": switch("measure", "--measure/--no-measure", "Measure crack length/width/area on each mask."),
    "mm_per_px": Alias("mm_per_px", float | None, typer.Option(
        None, "--mm-per-px", help="Pixel size in mm (with --measure or --report).")),
    "min_length": Alias("min_length", float | None, typer.Option(
        None, "--min-length", help="Shortest crack kept by --measure, px (default 10).")),
    "report": switch("report", "--report/--no-report", "Also inspect the masks: crack types, severity, HTML "
                      "report, COCO/GeoJSON/CSV in OUT/report (options: `cracksam report`)."),
    "json_out": switch("json", "--json/--no-json", "Print the summary as JSON."),
    "progress": switch("progress", "--progress/--no-progress", "Progress bar (default) or none."),
    "engine": Alias("engine", str | None, typer.Option(None, "--engine", help=ENGINE_HELP + " Default plain.")),
    "address": Alias("address", str | None, typer.Option(
        None, "--address", help="Ray cluster (auto, ray://head:10001); default: local.")),
    "workers": Alias("workers", int | None, typer.Option(
        None, "--workers", help="Ray workers, each loading the model once (default: one per CPU / --threads).")),
    "manifest": Alias("manifest", Path | None, typer.Option(
        None, "--manifest", help="CSV/Parquet: one image path per row (column path/image/file); other columns are "
        "carried to the table."), as_str),
    "path_column": Alias("path_column", str | None, typer.Option(
        None, "--path-column", help="The manifest's image path column.")),
    "table": switch("table", "--table/--no-table", "Write results.parquet (resumable) with the plain engine."),
    "csv": switch("csv", "--csv/--no-csv", "Also write the results table as results.csv."),
}

PARAMS = command_params(ALIASES, "predictor.threshold=0.4")


def resolve_config(values: dict[str, Any], environ: Mapping[str, str] | None = None) -> PredictConfig:
    """The command's config from ``--config``, the environment, ``--set`` and the flags."""
    from cracksam.cli.predict_config import PredictConfig

    env = os.environ if environ is None else environ
    cfg, _ = resolve_tree(PredictConfig, "predict", ALIASES, values, environ=env, env_aliases=runtime_env_alias(env))
    return cfg


def _check_out_apart(out: Path, files: list[Path]) -> None:
    """Outputs (``<stem>_mask.png``, overlays, summary.json) never go into a folder of input photos:
    they could replace the user's files there (a ground-truth ``<stem>_mask.png``) and would be read
    back as photos by the next run on that folder."""
    target = out.resolve()
    shared = sorted({str(f.parent) for f in files if f.parent.resolve() == target})
    if shared:
        raise ConfigError(f"--out {out} is the folder of the input photos ({shared[0]}): outputs would overwrite "
                          "files there and be read as photos next time; give another --out folder")


def predict(print_config: bool, **values: Any) -> None:
    """Segment cracks; writes <stem>_mask.png (0/255, same size as the input) per image and summary.json.

    Unreadable or invalid files are reported by name and skipped; the exit code is then 1.
    Every option is also a config key: --config, --set KEY=VALUE, CRACKSAM_PREDICT__* (--help-config).
    """
    cfg = resolve_config(values)  # every check that needs no file has run here, once
    if print_config:
        show_config(cfg)
        return
    model = cfg.predictor.model or DEFAULT_MODEL_NAME
    if cfg.survey:
        # The same options as the plain predict: --runtime auto builds the runtime cache once in
        # the driver (survey_command opens the model there first), so local Ray workers find it built.
        return survey_command(cfg, model=model)  # the results table (cracksam.survey)
    from cracksam.data.inputs import expand_inputs

    files, problems = expand_inputs(cfg.inputs)
    if not files:  # nothing to segment: one line, before the model loads or --out is made
        raise ConfigError("; ".join(f"{name}: {problem}" for name, problem in problems) or "no input images")
    _check_out_apart(Path(cfg.out), files)
    from rich.console import Console

    from cracksam._files import atomic_write_text
    from cracksam.deployment.runtime_cache import describe_choice, select_backend
    from cracksam.inference.predictor import open_predictor
    from cracksam.models.identity import model_id_for
    from cracksam.progress_bar import progress_bar
    from cracksam.threads import resolve_threads

    threads = resolve_threads(cfg.predictor.threads)
    options = cfg.predictor.replace(model=model, threads=threads)
    out, json_out, min_length, mm_per_px = (Path(cfg.out), cfg.json,
                                            cfg.min_length_px, cfg.mm_per_px)
    console = Console(stderr=True, soft_wrap=True)  # error lines must not be cut at the terminal width
    announce = None if json_out else (lambda text: console.print(text, highlight=False))
    predictor = open_predictor(options, select_backend, announce)  # the one door: resolves and loads the model
    model_path = predictor.model_path
    output_dir(out)
    if not json_out:
        console.print(f"inference: {predictor.inference_summary()}; {threads} CPU thread(s)", highlight=False)
        console.print(describe_choice(predictor.runtime_info), highlight=False)
    for name, problem in problems:
        console.print(f"[red]error[/red]: {name}: {problem}")

    rows: list[dict[str, Any]] = []
    used: set[str] = set()
    start = time.perf_counter()
    progress = progress_bar(console, enabled=cfg.progress)
    interrupted = False
    with progress:
        task = progress.add_task("segmenting", total=len(files))
        try:
            _segment_all(files, rows, used, progress, task, predictor, cfg.image_options(), console)
        except KeyboardInterrupt:  # Ctrl-C: what was done so far still gets its summary.json
            interrupted = True
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
    if interrupted:
        summary.update(interrupted=True, not_run=len(files) - len(rows))
    if cfg.report and not interrupted:
        from cracksam.cli.report import report_predictions

        summary["report"] = report_predictions(ok, out, mm_per_px, min_length, quiet=json_out,
                                               no_progress=not cfg.progress)
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
    if interrupted:
        console.print(f"interrupted: {len(rows)} of {len(files)} image(s) done; {out / 'summary.json'} lists them")
        raise typer.Exit(130)
    if failed or summary_error is not None:
        raise typer.Exit(1)


def _segment_all(files: list[Path], rows: list[dict[str, Any]], used: set[str], progress: Any, task: Any,
                 predictor: Any, options: ImageOptions, console: Any) -> None:
    """Segment ``files`` one by one, appending a row per image to ``rows`` as soon as it is done (so an
    interrupted run still knows what it wrote); the files are the survey's (one :func:`write_outputs`)."""
    from cracksam.data.inputs import unique_stem
    from cracksam.data.io import read_image
    from cracksam.survey.outputs import write_outputs

    for path in files:
        row: dict[str, Any] = {"file": str(path)}
        written: list[str] = []  # what this image left on disk, whatever happens after
        t0 = time.perf_counter()
        try:
            image = read_image(path, max_pixels=options.max_pixels)
            pred = predictor.predict_one(image)
            write_outputs(image, pred, unique_stem(path, used), options, row, written)
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


def register(app: typer.Typer) -> None:
    app.command("predict")(make_command("predict", predict.__doc__ or "", PARAMS, predict))
