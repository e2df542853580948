"""``cracksam bench``: every runtime of a model timed in one table -- latency (one request at a
time) and throughput (several requests in flight) -- with each export's mask IoU against PyTorch."""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from cracksam.cli.bench_config import DEFAULT_BACKENDS  # light: the runtimes load only when it is built
from cracksam.cli.inputs import output_dir
from cracksam.cli.options import DEFAULT_MODEL_NAME, MODEL_HELP, RANDOM_BASE_HELP, TRUST_HELP, model_path_option
from cracksam.cli.tree import Alias, as_str, as_strs, command_params, make_command, resolve_tree, switch
from cracksam.cli.tree import print_config as show_config
from cracksam.errors import ConfigError

if TYPE_CHECKING:
    from cracksam.cli.bench_config import BenchConfig


def _names(text: str) -> list[str]:
    # An empty --backends is kept (not "not given"), so it is refused as before, not replaced by the default.
    return [t.strip() for t in text.split(",") if t.strip()]


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


# Every flag is a BenchConfig key (see cracksam.cli.tree: defaults < --config < CRACKSAM_BENCH__* <
# --set < flags).
ALIASES: dict[str, Alias] = {
    "model": Alias("model", list[str] | None, typer.Option(
        None, "--model", "-m", help=MODEL_HELP + " Repeat for several."), as_strs),
    "backends": Alias("backends", str | None, typer.Option(
        None, "--backends",
        help="For checkpoint folders: torch, torch-compile and the export targets to build and time "
             "(onnx-int8-static and openvino-int8 need --calib; without it they are skipped when not named). "
             f"Default {','.join(DEFAULT_BACKENDS)}."), _names),
    "batch": Alias("batch", int | None, typer.Option(None, "--batch", help="Batch size (default 1).")),
    "threads": Alias("threads", int | None, typer.Option(
        None, "--threads", help="CPU threads of every runtime (default: every core).")),
    "iterations": Alias("iterations", int | None, typer.Option(
        None, "--iterations", help="Timed runs per backend (also the requests of the throughput run; default 10).")),
    "warmup": Alias("warmup", int | None, typer.Option(None, "--warmup", help="Untimed runs first (default 2).")),
    "in_flight": Alias("in_flight", int | None, typer.Option(
        None, "--in-flight", help="Requests in flight in the throughput run (1: skip it; default 2).")),
    "base": Alias("base", str | None, typer.Option(None, "--base", help="SAM base checkpoint for a delta checkpoint.")),
    "allow_random_base": Alias("allow_random_base", bool | None, typer.Option(
        None, "--allow-random-base/--no-allow-random-base", help=RANDOM_BASE_HELP)),
    "trust": Alias("trust", bool | None, typer.Option(None, "--trust/--no-trust", help=TRUST_HELP)),
    "calib": Alias("calib", list[Path] | None, typer.Option(
        None, "--calib", help="Calibration images for INT8."), as_strs),
    "samples": Alias("samples", list[Path] | None, typer.Option(
        None, "--samples", help="Images for the parity check of each export."), as_strs),
    "export_dir": Alias("export_dir", Path | None, typer.Option(
        None, "--export-dir", help="Where exports of checkpoint folders go (default bench-export)."), as_str),
    "min_iou": Alias("min_iou", float | None, typer.Option(
        None, "--min-iou", help="Parity tolerance for exports (default 0.99 FP32/FP16, 0.97 INT8); 0 times every "
        "export.")),
    "json_out": switch("json", "--json/--no-json", "Print the results as JSON to stdout (the table goes to "
                       "stderr), as --json does in every command."),
    "out": Alias("out", Path | None, typer.Option(
        None, "--out", "-o", help="Also write the results as JSON to this file."), as_str),
}

PARAMS = command_params(ALIASES, "iterations=20")


def resolve_config(values: dict[str, Any], environ: Mapping[str, str] | None = None) -> BenchConfig:
    """The command's config from ``--config``, the environment, ``--set`` and the flags."""
    from cracksam.cli.bench_config import BenchConfig

    cfg, _ = resolve_tree(BenchConfig, "bench", ALIASES, values, environ=environ)
    return cfg


def bench(print_config: bool, **values: Any) -> None:
    """Latency (p50/p90) and throughput per runtime and precision, × PyTorch eager, mask IoU vs PyTorch.

    Backends are named as export targets everywhere (torch, torch-compile, onnx, onnx-fused, onnx-int8,
    onnx-int8-static, openvino-fp32, openvino-fp16, openvino-int8; an .onnx or .xml given as --model
    is labelled the same way).

    Every option is also a config key: --config, --set KEY=VALUE, CRACKSAM_BENCH__* (--help-config)."""
    cfg = resolve_config(values)  # every check that needs no file has run here, once
    if print_config:
        show_config(cfg)
        return
    import numpy as np
    import torch

    from cracksam.cli import export as export_cli  # its model loader (tests replace it)
    from cracksam.config import atomic_write_text
    from cracksam.deployment.pipeline import (
        CALIBRATED,
        check_qat_model,
        export_all,
        inputs_for_model,
        parse_targets,
    )
    from cracksam.deployment.timing import time_backend, time_throughput
    from cracksam.inference.backends import TARGETS, open_backend, target_name
    from cracksam.models.io import checkpoint_folder
    from cracksam.models.quantizers import has_quantizer_files
    from cracksam.threads import resolve_threads

    # Always an explicit figure: each runtime's own default differs, and the table must say what ran.
    threads = resolve_threads(cfg.threads)
    batch, iterations, warmup, in_flight, min_iou = cfg.batch, cfg.iterations, cfg.warmup, cfg.in_flight, cfg.min_iou
    base, allow_random_base, trust, json_out = cfg.base, cfg.allow_random_base, cfg.trust, cfg.json
    calib, samples = [Path(p) for p in cfg.calib], [Path(p) for p in cfg.samples]
    export_dir, out = Path(cfg.export_dir), Path(cfg.out) if cfg.out is not None else None
    if out is not None and out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file name for the JSON results")
    names = list(cfg.backends)
    console = Console(stderr=True, soft_wrap=True)
    if not calib:
        skipped = [n for n in names if n in CALIBRATED]
        if skipped and not cfg.default_backends:
            raise ConfigError(f"{', '.join(skipped)} need(s) --calib FOLDER")
        if skipped:
            console.print(f"{', '.join(skipped)}: skipped (no --calib photos to calibrate INT8 on)")
        names = [n for n in names if n not in CALIBRATED]
    targets = parse_targets(",".join(n for n in names if n in TARGETS)) if any(n in TARGETS for n in names) else []
    torch.set_num_threads(threads)
    rows: list[dict[str, Any]] = []
    for m in [model_path_option(name) for name in cfg.model or [DEFAULT_MODEL_NAME]]:
        entries: list[tuple] = []  # (label, latency backend, throughput backend or None, parity)
        if m.is_dir():
            net = export_cli._load_torch_model(m, base, allow_random_base, trust)
            sample_x, where = inputs_for_model(net, samples or calib or [], limit=16, synthetic_fallback=4)
            entries += _torch_entries(net, names, threads, sample_x, console)
            folder = checkpoint_folder(m)
            mine = list(targets)
            if "openvino-int8-qat" in mine and not has_quantizer_files(folder):
                if not cfg.default_backends:
                    check_qat_model(folder)  # refuses, naming the missing file
                console.print(f"openvino-int8-qat: skipped for {m.name} (not trained with --qat)")
                mine.remove("openvino-int8-qat")
            if mine:
                output_dir(export_dir, "--export-dir")
                calib_x = inputs_for_model(net, calib, limit=64)[0] if calib else None
                console.print(f"exporting {m} to {', '.join(mine)} in {export_dir / m.name}; parity on {where}")
                overrides = {p: min_iou for p in ("fp32", "fp16", "int8")} if min_iou is not None else None
                run = export_all(net, export_dir / m.name, mine, sample_x, calib_x, overrides, threads=threads,
                                 model_dir=folder)
                for r in run.results:
                    if not r.passed:
                        console.print(f"[red]{r.target}: parity IoU {r.parity['mask_iou']:.4f} < {r.min_iou}, "
                                      f"refused and deleted (F1 with 2-px tolerance {r.parity['mask_f1_2px']:.4f})")
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
                         "parity_logit_cosine": parity["logit_cosine"] if parity else None,
                         "parity_mask_f1_2px": parity["mask_f1_2px"] if parity else None})
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


def _machine(threads: int) -> str:
    """``threads N`` and the processor's name where the platform gives one (often empty on Linux)."""
    name = platform.processor().strip()
    return f"threads {threads}" + (f", {name}" if name else "")


def _print_table(rows: list[dict[str, Any]], batch: int, threads: int, in_flight: int, stderr: bool) -> None:
    table = Table(title=f"batch {batch}, {_machine(threads)}")
    heads = ["model", "backend", "p50 ms", "p90 ms", "images/s", "× eager"]
    if in_flight > 1:
        heads += [f"images/s, {in_flight} in flight", "× eager (in flight)"]
    for col in (*heads, "mask IoU vs PyTorch", "F1 (2 px) vs PyTorch"):
        table.add_column(col)
    for r in rows:
        cells = [Path(r["model"]).name, r["backend"], f"{r['latency_ms_median']:.1f}", f"{r['latency_ms_p90']:.1f}",
                 f"{r['images_per_s']:.2f}", f"{r['speedup_vs_torch']:.2f}" if r["speedup_vs_torch"] else "–"]
        if in_flight > 1:
            through, up = r.get("throughput_images_per_s"), r.get("throughput_speedup_vs_torch")
            cells += [f"{through:.2f}" if through else "–", f"{up:.2f}" if up else "–"]
        for key in ("parity_mask_iou", "parity_mask_f1_2px"):
            cells.append(f"{r[key]:.4f}" if r[key] is not None else "–")
        table.add_row(*cells)
    Console(soft_wrap=True, stderr=stderr).print(table)


def register(app: typer.Typer) -> None:
    app.command("bench")(make_command("bench", bench.__doc__ or "", PARAMS, bench))
