"""``cracksam bench``: every runtime of a model timed in one table -- latency (one request at a
time) and throughput (several requests in flight) -- with each export's mask IoU against PyTorch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cracksam.cli.inputs import output_dir
from cracksam.cli.options import DEFAULT_MODEL_NAME, MODEL_HELP, RANDOM_BASE_HELP, model_path_option, trust_option
from cracksam.errors import ConfigError

DEFAULT_BACKENDS = ("torch,torch-compile,onnx,onnx-fused,onnx-int8,onnx-int8-static,"
                    "openvino-fp32,openvino-fp16,openvino-int8")
TORCH_BACKENDS = ("torch", "torch-compile")


def _torch_entries(net: Any, names: list[str], threads: int, sample_x: Any, console: Console) -> list[tuple]:
    """(label, latency backend, throughput backend, parity) for eager and compiled PyTorch."""
    from cracksam.deployment.export import parity_report
    from cracksam.errors import CrackSAMError
    from cracksam.inference.backends import TorchBackend

    eager = TorchBackend(net, threads=threads)
    entries: list[tuple] = []
    if "torch" in names:
        entries.append(("torch", eager, eager, None))
    if "torch-compile" in names:
        from cracksam.inference.compiled import CompiledTorchBackend

        console.print("compiling the model with torch.compile (inductor) ...")
        try:
            compiled = CompiledTorchBackend(net, threads=threads)
            parity = parity_report(eager, compiled, sample_x)
        except (CrackSAMError, RuntimeError) as exc:  # inductor needs a C++ compiler; say so and go on
            console.print(f"[red]torch-compile: skipped ({str(exc).splitlines()[0][:200]})")
        else:
            entries.append(("torch-compile", compiled, compiled, parity))
    return entries


def _throughput_backend(path: Path, runtime: str, threads: int, in_flight: int) -> Any:
    """The same file opened for throughput: OpenVINO with the THROUGHPUT hint and one stream per
    request in flight; ONNX Runtime with the cores split among the requests (no oversubscription)."""
    from cracksam.inference.backends import OnnxRuntimeBackend, OpenVINOBackend

    if runtime == "openvino":
        return OpenVINOBackend(path, threads=threads, hint="THROUGHPUT", streams=in_flight)
    return OnnxRuntimeBackend(path, threads=max(1, threads // in_flight))


def bench(
    model: list[str] | None = typer.Option(None, "--model", "-m", help=MODEL_HELP + " Repeat for several."),
    backends: str = typer.Option(
        DEFAULT_BACKENDS,
        help="For checkpoint folders: torch, torch-compile and the export targets to build and time "
             "(onnx-int8-static and openvino-int8 need --calib; without it they are skipped when not named).",
    ),
    batch: int = typer.Option(1, help="Batch size."),
    threads: int | None = typer.Option(None, help="CPU threads of every runtime (default: every core)."),
    iterations: int = typer.Option(10, help="Timed runs per backend (also the requests of the throughput run)."),
    warmup: int = typer.Option(2, help="Untimed runs first."),
    in_flight: int = typer.Option(2, "--in-flight", help="Requests in flight in the throughput run (1: skip it)."),
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
    """Latency (p50/p90) and throughput per runtime and precision, × PyTorch eager, mask IoU vs PyTorch.

    Backends are named as export targets everywhere (torch, torch-compile, onnx, onnx-fused, onnx-int8,
    onnx-int8-static, openvino-fp32, openvino-fp16, openvino-int8; an .onnx or .xml given as --model
    is labelled the same way)."""
    import numpy as np
    import torch

    from cracksam.cli import export as export_cli  # its model loader (tests replace it)
    from cracksam.config import atomic_write_text
    from cracksam.deployment.pipeline import (
        CALIBRATED,
        export_all,
        inputs_for_model,
        parse_targets,
        time_backend,
        time_throughput,
    )
    from cracksam.inference.backends import TARGETS, open_backend, target_name
    from cracksam.threads import resolve_threads

    # Always an explicit figure: each runtime's own default differs, and the table must say what ran.
    threads = resolve_threads(threads)
    if batch < 1 or iterations < 1 or warmup < 0 or in_flight < 1:
        raise ConfigError("--batch, --iterations and --in-flight must be >= 1 and --warmup >= 0")
    if out is not None and out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file name for the JSON results")
    names = [b.strip() for b in backends.split(",") if b.strip()]
    unknown = [n for n in names if n not in TORCH_BACKENDS and n not in TARGETS]
    if unknown or not names:
        raise ConfigError(f"unknown backend(s) {unknown or backends!r}; choose from "
                          f"{', '.join((*TORCH_BACKENDS, *TARGETS))}")
    console = Console(stderr=True, soft_wrap=True)
    if not calib:
        skipped = [n for n in names if n in CALIBRATED]
        if skipped and backends != DEFAULT_BACKENDS:
            raise ConfigError(f"{', '.join(skipped)} need(s) --calib FOLDER")
        if skipped:
            console.print(f"{', '.join(skipped)}: skipped (no --calib photos to calibrate INT8 on)")
        names = [n for n in names if n not in CALIBRATED]
    targets = parse_targets(",".join(n for n in names if n in TARGETS)) if any(n in TARGETS for n in names) else []
    torch.set_num_threads(threads)
    rows: list[dict[str, Any]] = []
    for m in [model_path_option(name) for name in model or [DEFAULT_MODEL_NAME]]:
        entries: list[tuple] = []  # (label, latency backend, throughput backend or None, parity)
        if m.is_dir():
            net = export_cli._load_torch_model(m, base, allow_random_base, trust)
            sample_x, where = inputs_for_model(net, samples or calib or [], limit=16, synthetic_fallback=4)
            entries += _torch_entries(net, names, threads, sample_x, console)
            if targets:
                output_dir(export_dir, "--export-dir")
                calib_x = inputs_for_model(net, calib, limit=64)[0] if calib else None
                console.print(f"exporting {m} to {', '.join(targets)} in {export_dir / m.name}; parity on {where}")
                overrides = {p: min_iou for p in ("fp32", "fp16", "int8")} if min_iou is not None else None
                run = export_all(net, export_dir / m.name, targets, sample_x, calib_x, overrides, threads=threads)
                for r in run.results:
                    if not r.passed:
                        console.print(f"[red]{r.target}: parity IoU {r.parity['mask_iou']:.4f} < {r.min_iou}, "
                                      "refused and deleted")
                        continue
                    runtime = TARGETS[r.target][0]
                    latency = open_backend(r.path, threads=threads)
                    if runtime == "openvino":
                        latency = open_backend(r.path, threads=threads, hint="LATENCY")
                    through = _throughput_backend(r.path, runtime, threads, in_flight) if in_flight > 1 else None
                    entries.append((r.target, latency, through, r.parity))
        else:
            backend = open_backend(m, threads=threads)
            entries.append((target_name(backend.name, backend.precision), backend, backend, None))
        for label, backend, through, parity in entries:
            x = (np.random.default_rng(0).random((batch, 3, backend.image_size, backend.image_size)) * 255).astype(
                np.float32
            )
            console.print(f"timing {m.name} · {label} ...")
            t = time_backend(backend, x, iterations, warmup)
            if in_flight > 1 and through is not None:
                t.update(time_throughput(through, x, in_flight, requests=max(iterations, 2 * in_flight)))
            rows.append({"model": str(m), "backend": label, "runtime": backend.name, "precision": backend.precision,
                         "threads": threads, **t, "parity_mask_iou": parity["mask_iou"] if parity else None,
                         "parity_logit_cosine": parity["logit_cosine"] if parity else None})
    _add_speedups(rows)
    _print_table(rows, batch, threads, in_flight, stderr=json_out)
    document = json.dumps({"batch": batch, "threads": threads, "in_flight": in_flight, "results": rows}, indent=2)
    if out is not None:
        atomic_write_text(out, document + "\n")
    if json_out:
        typer.echo(document)


def _add_speedups(rows: list[dict[str, Any]]) -> None:
    """Speed-ups against PyTorch eager of the same model (latency mode), when it was measured."""
    for row in rows:
        eager = next((r for r in rows if r["model"] == row["model"] and r["backend"] == "torch"), None)
        row["speedup_vs_torch"] = row["images_per_s"] / eager["images_per_s"] if eager else None
        through = row.get("throughput_images_per_s")
        row["throughput_speedup_vs_torch"] = through / eager["images_per_s"] if eager and through else None


def _print_table(rows: list[dict[str, Any]], batch: int, threads: int, in_flight: int, stderr: bool) -> None:
    from cracksam.cli.export import _machine

    table = Table(title=f"batch {batch}, {_machine(threads)}")
    heads = ["model", "backend", "p50 ms", "p90 ms", "images/s", "× eager"]
    if in_flight > 1:
        heads += [f"images/s, {in_flight} in flight", "× eager (in flight)"]
    for col in (*heads, "mask IoU vs PyTorch"):
        table.add_column(col)
    for r in rows:
        cells = [Path(r["model"]).name, r["backend"], f"{r['latency_ms_median']:.1f}", f"{r['latency_ms_p90']:.1f}",
                 f"{r['images_per_s']:.2f}", f"{r['speedup_vs_torch']:.2f}" if r["speedup_vs_torch"] else "–"]
        if in_flight > 1:
            through, up = r.get("throughput_images_per_s"), r.get("throughput_speedup_vs_torch")
            cells += [f"{through:.2f}" if through else "–", f"{up:.2f}" if up else "–"]
        cells.append(f"{r['parity_mask_iou']:.4f}" if r["parity_mask_iou"] is not None else "–")
        table.add_row(*cells)
    Console(soft_wrap=True, stderr=stderr).print(table)
