"""``cracksam export``: deployable files, each checked against PyTorch (``bench`` is in :mod:`.bench`)."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cracksam.cli.inputs import output_dir
from cracksam.cli.options import DEFAULT_MODEL_NAME, RANDOM_BASE_HELP, model_path_option, trust_option
from cracksam.errors import ConfigError


def _load_torch_model(model: Path, base: str | None, allow_random_base: bool, trust: bool = False) -> Any:
    from cracksam.models.io import load_model

    return load_model(model, base_checkpoint=base, allow_random_base=allow_random_base, trust=trust)


def _machine(threads: int) -> str:
    """``threads N`` and the processor's name where the platform gives one (often empty on Linux)."""
    name = platform.processor().strip()
    return f"threads {threads}" + (f", {name}" if name else "")


def export(
    model: str = typer.Option(
        DEFAULT_MODEL_NAME, "--model", "-m",
        help="Checkpoint folder (delta or full) or training run folder (its best/); 'default' (the default) is the "
             "bundled model.",
    ),
    out: Path = typer.Option(Path("export"), "--out", "-o", help="Output folder."),
    targets: str = typer.Option(
        "onnx,openvino-fp16",
        help="Comma list: onnx, onnx-fused, onnx-int8 (dynamic), onnx-int8-static (QDQ, needs --calib), "
             "openvino-fp32, openvino-fp16, openvino-int8 (NNCF, needs --calib).",
    ),
    base: str | None = typer.Option(None, "--base", help="SAM base checkpoint for a delta checkpoint."),
    allow_random_base: bool = typer.Option(False, "--allow-random-base", help=RANDOM_BASE_HELP),
    trust: bool = trust_option(),
    samples: list[Path] | None = typer.Option(None, "--samples", help="Images for the parity report (files/folders)."),
    calib: list[Path] | None = typer.Option(None, "--calib", help="Calibration images for INT8 (files/folders)."),
    calib_size: int = typer.Option(64, help="At most this many calibration images."),
    min_iou: float | None = typer.Option(
        None, help="Override the parity tolerance (default 0.99 FP32/FP16, 0.97 INT8)."
    ),
    opset: int = typer.Option(17, help="ONNX opset (>= 17)."),
    threads: int | None = typer.Option(None, help="CPU threads for the parity runs (default: every core)."),
    dynamic_shape: bool = typer.Option(
        False, "--dynamic-shape", help="Fully convolutional models: dynamic height and width (native resolution)."
    ),
) -> None:
    """Export to ONNX (LoRA merged, upsampling in the graph, dynamic batch) and OpenVINO FP32/FP16/INT8,
    then check every export against PyTorch; exits 1 (and deletes the export) when masks disagree."""
    from cracksam.deployment.pipeline import CALIBRATED, export_all, inputs_for_model, parse_targets, write_report
    from cracksam.threads import resolve_threads

    threads = resolve_threads(threads)
    names = parse_targets(targets)
    if opset < 17:
        raise ConfigError(f"--opset must be >= 17, got {opset}")
    if min_iou is not None and not 0.0 <= min_iou <= 1.0:
        raise ConfigError(f"--min-iou must be in [0, 1], got {min_iou}")
    model_path = model_path_option(model)
    net = _load_torch_model(model_path, base, allow_random_base, trust)
    size = net.config.image_size
    # Photos as the model sees them: resized for CrackSAM, native-scale windows for the others.
    sample_x, where = inputs_for_model(net, samples or calib or [], limit=32, synthetic_fallback=8)
    calib_x = None
    needs = [n for n in names if n in CALIBRATED]
    if needs:
        if not calib:
            raise ConfigError(f"{', '.join(needs)} need(s) --calib FOLDER (a few dozen representative photos)")
        calib_x, _ = inputs_for_model(net, calib, limit=calib_size)
    output_dir(out)  # after every check: a refused export leaves no empty folder behind
    overrides = {p: min_iou for p in ("fp32", "fp16", "int8")} if min_iou is not None else None
    console = Console(stderr=True, soft_wrap=True)
    console.print(f"exporting {model_path} ({size}×{size}) to {', '.join(names)}; parity on {where}")
    run = export_all(net, out, names, sample_x, calib_x, overrides, opset, threads, dynamic_shape=dynamic_shape)
    run.samples = where
    write_report(run, out / "parity.json")
    table = Table(title=f"parity against PyTorch ({where})")
    for col in ("target", "file", "mask IoU", "max |Δp|", "tolerance", "result"):
        table.add_column(col)
    for r in run.results:
        table.add_row(
            r.target,
            str(r.path),
            f"{r.parity['mask_iou']:.4f}",
            f"{r.parity['max_abs_prob_diff']:.2e}",
            f"≥ {r.min_iou}",
            "ok" if r.passed else "REFUSED (deleted)",
        )
    Console(soft_wrap=True).print(table)
    if run.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    from cracksam.cli.bench import bench

    app.command("export")(export)
    app.command("bench")(bench)
