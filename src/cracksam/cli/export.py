"""``cracksam export`` and ``cracksam bench``: deployable files and their speed."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cracksam.cli.inputs import output_dir
from cracksam.cli.options import DEFAULT_MODEL_NAME, MODEL_HELP, RANDOM_BASE_HELP, model_path_option, trust_option
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
        "onnx,openvino-fp16", help="Comma list: onnx, openvino-fp32, openvino-fp16, openvino-int8."
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
) -> None:
    """Export to ONNX (LoRA merged, upsampling in the graph, dynamic batch) and OpenVINO FP32/FP16/INT8,
    then check every export against PyTorch; exits 1 (and deletes the export) when masks disagree."""
    from cracksam.deployment.pipeline import export_all, load_network_inputs, parse_targets, write_report
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
    sample_x, where = load_network_inputs(samples or calib or [], size, limit=32, synthetic_fallback=8)
    calib_x = None
    if "openvino-int8" in names:
        if not calib:
            raise ConfigError("openvino-int8 needs --calib FOLDER (a few dozen representative photos)")
        calib_x, _ = load_network_inputs(calib, size, limit=calib_size)
    output_dir(out)  # after every check: a refused export leaves no empty folder behind
    overrides = {p: min_iou for p in ("fp32", "fp16", "int8")} if min_iou is not None else None
    console = Console(stderr=True, soft_wrap=True)
    console.print(f"exporting {model_path} ({size}×{size}) to {', '.join(names)}; parity on {where}")
    run = export_all(net, out, names, sample_x, calib_x, overrides, opset, threads)
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


def bench(
    model: list[str] | None = typer.Option(None, "--model", "-m", help=MODEL_HELP + " Repeat for several."),
    backends: str = typer.Option(
        "torch,onnx,openvino-fp32,openvino-fp16,openvino-int8",
        help="For checkpoint folders: torch and the export targets to build and time.",
    ),
    batch: int = typer.Option(1, help="Batch size."),
    threads: int | None = typer.Option(None, help="CPU threads of every runtime (default: every core)."),
    iterations: int = typer.Option(10, help="Timed runs per backend."),
    warmup: int = typer.Option(2, help="Untimed runs first."),
    base: str | None = typer.Option(None, "--base", help="SAM base checkpoint for a delta checkpoint."),
    allow_random_base: bool = typer.Option(False, "--allow-random-base", help=RANDOM_BASE_HELP),
    trust: bool = trust_option(),
    calib: list[Path] | None = typer.Option(None, "--calib", help="Calibration images for INT8."),
    samples: list[Path] | None = typer.Option(None, "--samples", help="Images for the parity check of each export."),
    export_dir: Path = typer.Option(Path("bench-export"), help="Where exports of checkpoint folders go."),
    min_iou: float | None = typer.Option(
        None, help="Parity tolerance for exports (default 0.99 FP32/FP16, 0.97 INT8); 0 times every export."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the results as JSON to stdout (the table goes to "
                                  "stderr), as --json does in every command."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the results as JSON to this file."),
) -> None:
    """Throughput and latency per runtime and precision (like OpenVINO's benchmark_app).

    Backends are named as export targets everywhere: torch, onnx, openvino-fp32, openvino-fp16,
    openvino-int8 (an .onnx or .xml given as --model is labelled the same way)."""
    import numpy as np
    import torch

    from cracksam.config import atomic_write_text
    from cracksam.deployment.backends import TorchBackend, open_backend, target_name
    from cracksam.deployment.pipeline import export_all, load_network_inputs, parse_targets, time_backend
    from cracksam.threads import resolve_threads

    # Always an explicit figure: each runtime's own default differs, and the table must say what ran.
    threads = resolve_threads(threads)
    if batch < 1 or iterations < 1 or warmup < 0:
        raise ConfigError("--batch and --iterations must be >= 1 and --warmup >= 0")
    if out is not None and out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file name for the JSON results")
    names = [b.strip() for b in backends.split(",") if b.strip()]
    targets = parse_targets(",".join(n for n in names if n != "torch")) if any(n != "torch" for n in names) else []
    torch.set_num_threads(threads)
    rows: list[dict[str, Any]] = []
    console = Console(stderr=True, soft_wrap=True)
    for m in [model_path_option(name) for name in model or [DEFAULT_MODEL_NAME]]:
        entries: list[tuple[str, Any, dict[str, Any] | None]] = []
        if m.is_dir():
            net = _load_torch_model(m, base, allow_random_base, trust)
            size = net.config.image_size
            if "torch" in names:
                entries.append(("torch", TorchBackend(net, threads=threads), None))
            if targets:
                output_dir(export_dir, "--export-dir")
                sample_x, where = load_network_inputs(samples or calib or [], size, limit=16, synthetic_fallback=4)
                calib_x = load_network_inputs(calib, size, limit=64)[0] if calib else None
                if "openvino-int8" in targets and calib_x is None:
                    raise ConfigError("openvino-int8 needs --calib FOLDER")
                console.print(f"exporting {m} to {', '.join(targets)} in {export_dir / m.name} ...")
                overrides = {p: min_iou for p in ("fp32", "fp16", "int8")} if min_iou is not None else None
                run = export_all(net, export_dir / m.name, targets, sample_x, calib_x, overrides, threads=threads)
                for r in run.results:
                    if r.passed:
                        entries.append((r.target, open_backend(r.path, threads=threads), r.parity))
                    else:
                        console.print(f"[red]{r.target}: parity IoU {r.parity['mask_iou']:.4f} < {r.min_iou}, skipped")
        else:
            backend = open_backend(m, threads=threads)
            entries.append((target_name(backend.name, backend.precision), backend, None))
        for label, backend, parity in entries:
            x = (np.random.default_rng(0).random((batch, 3, backend.image_size, backend.image_size)) * 255).astype(
                np.float32
            )
            console.print(f"timing {m.name} · {label} ...")
            t = time_backend(backend, x, iterations, warmup)
            rows.append(
                {
                    "model": str(m),
                    "backend": label,
                    "runtime": backend.name,
                    "precision": backend.precision,
                    "threads": threads,
                    **t,
                    "parity_mask_iou": parity["mask_iou"] if parity else None,
                }
            )
    # Speed-ups against PyTorch eager of the same model, when it was measured.
    for row in rows:
        eager = next((r for r in rows if r["model"] == row["model"] and r["backend"] == "torch"), None)
        row["speedup_vs_torch"] = row["images_per_s"] / eager["images_per_s"] if eager else None
    table = Table(title=f"batch {batch}, {_machine(threads)}")
    for col in ("model", "backend", "latency ms (median)", "p90 ms", "images/s", "× torch", "parity IoU"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            Path(row["model"]).name,
            row["backend"],
            f"{row['latency_ms_median']:.1f}",
            f"{row['latency_ms_p90']:.1f}",
            f"{row['images_per_s']:.2f}",
            f"{row['speedup_vs_torch']:.2f}" if row["speedup_vs_torch"] else "–",
            f"{row['parity_mask_iou']:.4f}" if row["parity_mask_iou"] is not None else "–",
        )
    Console(soft_wrap=True, stderr=json_out).print(table)
    document = json.dumps({"batch": batch, "threads": threads, "results": rows}, indent=2)
    if out is not None:
        atomic_write_text(out, document + "\n")
    if json_out:
        typer.echo(document)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("bench")(bench)
