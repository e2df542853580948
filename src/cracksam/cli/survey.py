"""``cracksam predict`` in survey mode (``--engine ray``, ``--manifest`` or ``--table``): the table,
resumption and the Ray options; :mod:`cracksam.cli.predict` hands its checked options over here and
:mod:`cracksam.survey` runs the job."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from cracksam.cli.predict_config import PredictConfig
    from cracksam.survey.outputs import ImageOptions

ENGINE_HELP = ("plain: this process; ray: Ray Data actors (local, or a cluster with --address). "
               "ray, --manifest and --table write results.parquet and skip images already in it.")


def survey_command(cfg: PredictConfig, *, model: str) -> None:
    """Run the job; exit code 1 when some images failed, 130 on Ctrl-C (the table is whole either way)."""
    from rich.console import Console

    from cracksam import __version__
    from cracksam.cli.inputs import output_dir
    from cracksam.config import atomic_write_text
    from cracksam.deployment.runtime_cache import describe_choice, select_backend
    from cracksam.inference.predictor import open_predictor
    from cracksam.models.identity import model_id_for
    from cracksam.progress_bar import progress_bar
    from cracksam.survey.engine import SurveyJob, run_survey
    from cracksam.survey.manifest import collect_inputs, require_pyarrow
    from cracksam.threads import cpu_cores

    # The options were checked when the config was built (cracksam.cli.predict_config).
    engine, address, workers, threads = cfg.engine, cfg.address, cfg.workers, cfg.predictor.threads
    out, json_out, no_progress, csv = Path(cfg.out), cfg.json, not cfg.progress, cfg.csv
    if engine == "ray":  # before anything slow: without Ray, say so at once
        from cracksam.survey.ray_engine import import_ray

        import_ray()
    require_pyarrow()
    job_inputs = collect_inputs(cfg.inputs, Path(cfg.manifest) if cfg.manifest else None, cfg.path_column)
    cores = cpu_cores()
    if engine == "ray":
        # Per worker: --threads, else the cores shared among --workers, else 1 (one worker per core).
        threads = threads or (max(1, cores // workers) if workers else 1)
        workers = workers or (max(1, cores // threads) if address is None else None)
    else:
        threads = threads or cores
    device = cfg.predictor.device
    console = Console(stderr=True, soft_wrap=True)
    # Opened here too (the one door, which resolves the model): bad options fail once, the id needs
    # the model card, and --runtime auto builds its parity-checked export (the runtime cache) once,
    # before any worker looks for it.  The workers open the resolved path.
    predictor: Any = open_predictor(cfg.predictor.replace(model=model, threads=threads), select_backend,
                                    None if json_out else lambda text: console.print(text, highlight=False))
    model_path = predictor.model_path
    spec = cfg.predictor.replace(model=str(model_path), threads=threads)
    runtime_info = dict(predictor.runtime_info)
    model_id = model_id_for(predictor.describe(), model_path)
    output_dir(out)
    ray_options: dict[str, Any] = {}
    if engine == "ray":
        del predictor  # the workers open their own
        predictor = None
        gc.collect()
        gpu = str(device).lower().startswith(("cuda", "gpu"))
        ray_options = {"address": address, "workers": workers, "threads": threads,
                       "gpus_per_worker": 1.0 if gpu else 0.0}
    options = cfg.image_options(model_id)
    job = SurveyJob(spec, options, job_inputs, batch_size=spec.batch_size, csv=csv)
    if not json_out:
        where = (f"ray, {workers or 'one per free CPU'} worker(s) x {threads} thread(s)" if engine == "ray"
                 else f"{threads} CPU thread(s)")
        console.print(f"model {model_id}; {where}", highlight=False)
        console.print(describe_choice(runtime_info), highlight=False)
    for name, problem in job_inputs.problems:
        console.print(f"[red]error[/red]: {name}: {problem}")
    progress = progress_bar(console, enabled=not no_progress)
    with progress:
        bar = progress.add_task("segmenting", total=None)

        def on_start(pending: int, skipped: int) -> None:
            progress.update(bar, total=pending)
            if skipped and not json_out:
                console.print(f"{skipped} image(s) already in {out / 'results.parquet'}: skipped", highlight=False)

        def on_rows(rows: list[dict[str, Any]]) -> None:
            progress.advance(bar, len(rows))
            for r in rows:
                if r["status"] != "ok":
                    console.print(f"[red]error[/red]: {r['error']}", highlight=False)

        result = run_survey(job, engine, predictor=predictor, ray_options=ray_options, on_start=on_start,
                            on_rows=on_rows)
    summary = {
        "model": model, "model_path": str(model_path), "model_id": model_id, "cracksam_version": __version__,
        "runtime": runtime_info,
        "engine": engine, "workers": workers, "threads": threads,
        "images": result.ok, "failed": result.errors + len(job_inputs.problems), "skipped": result.skipped,
        "processed": result.processed, "interrupted": result.interrupted, "total_seconds": round(result.seconds, 3),
        "seconds_to_first_rows": result.first_rows_seconds and round(result.first_rows_seconds, 3),
        "table": str(result.table), "table_rows": result.total_rows,
        "errors": result.error_messages[:1000] + [f"{n}: {p}" for n, p in job_inputs.problems],
    }
    if cfg.report and not result.interrupted:
        summary["report"] = _report(job_inputs.items, out, result.table, options, json_out, no_progress)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    if json_out:
        typer.echo(json.dumps(summary, indent=2))
    else:
        rate = f"{result.processed / result.seconds:.2f} images/s" if result.processed and result.seconds else "-"
        console.print(f"{result.ok} image(s) segmented, {summary['failed']} failed, {result.skipped} skipped, "
                      f"{rate}; table {result.table} ({result.total_rows} rows)", highlight=False)
    if result.interrupted:
        console.print("interrupted: the table holds every finished image; rerun the same command to continue",
                      highlight=False)
        raise typer.Exit(130)
    if summary["failed"]:
        raise typer.Exit(1)


def _report(items: list[Any], out: Path, table: Path | None, options: ImageOptions, quiet: bool,
            no_progress: bool) -> str | None:
    """The plain predict's ``--report`` (types, severity, HTML, COCO/GeoJSON/CSV) over the job's
    images that are ``ok`` in the table, this run's and earlier runs' alike."""
    import pyarrow.parquet as pq

    from cracksam.cli.report import report_predictions

    if table is None or not table.is_file():
        return None
    done = pq.read_table(table, columns=["path", "status"]).to_pylist()
    ok = {r["path"] for r in done if r["status"] == "ok"}
    rows = [{"mask": str(out / f"{it.stem}_mask.png"), "file": it.file} for it in items if it.path in ok]
    if not rows:
        return None
    return report_predictions(rows, out, options.mm_per_px, options.min_length, quiet=quiet,
                              no_progress=no_progress)
