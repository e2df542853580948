"""``cracksam export``: deployable files, each checked against PyTorch."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from cracksam.cli.inputs import output_dir
from cracksam.cli.options import DYNAMIC_HELP, RANDOM_BASE_HELP, TRUST_HELP, model_path_option
from cracksam.cli.tree import Alias, as_str, as_strs, command_params, make_command, resolve_tree, switch
from cracksam.cli.tree import print_config as show_config
from cracksam.errors import ConfigError

if TYPE_CHECKING:
    from cracksam.cli.export_config import ExportConfig


def _load_torch_model(model: Path, base: str | None, allow_random_base: bool, trust: bool = False) -> Any:
    from cracksam.models.io import load_model

    return load_model(model, base_checkpoint=base, allow_random_base=allow_random_base, trust=trust)


def _targets(text: str) -> list[str]:
    # An empty --targets is kept (not "not given"), so it is refused as before, not replaced by the default.
    return [t.strip() for t in text.split(",") if t.strip()]


# Every flag is an ExportConfig key (see cracksam.cli.tree: defaults < --config < CRACKSAM_EXPORT__* <
# --set < flags).
ALIASES: dict[str, Alias] = {
    "model": Alias("model", str | None, typer.Option(
        None, "--model", "-m",
        help="Checkpoint folder (delta or full) or training run folder (its best/); 'default' (the default) is the "
             "bundled model.")),
    "out": Alias("out", Path | None, typer.Option(None, "--out", "-o", help="Output folder (default export)."), as_str),
    "targets": Alias("targets", str | None, typer.Option(
        None, "--targets",
        help="Comma list: onnx, onnx-fused, onnx-int8 (dynamic), onnx-int8-static (QDQ, needs --calib), "
             "openvino-fp32, openvino-fp16, openvino-int8 (NNCF, needs --calib). Default onnx,openvino-fp16."),
        _targets),
    "base": Alias("base", str | None, typer.Option(None, "--base", help="SAM base checkpoint for a delta checkpoint.")),
    "allow_random_base": Alias("allow_random_base", bool | None, typer.Option(
        None, "--allow-random-base/--no-allow-random-base", help=RANDOM_BASE_HELP)),
    "trust": Alias("trust", bool | None, typer.Option(None, "--trust/--no-trust", help=TRUST_HELP)),
    "samples": Alias("samples", list[Path] | None, typer.Option(
        None, "--samples", help="Images for the parity report (files/folders)."), as_strs),
    "calib": Alias("calib", list[Path] | None, typer.Option(
        None, "--calib", help="Calibration images for INT8 (files/folders)."), as_strs),
    "calib_size": Alias("calib_size", int | None, typer.Option(
        None, "--calib-size", help="At most this many calibration images (default 64).")),
    "int8_max_drop": Alias("int8_max_drop", float | None, typer.Option(
        None, "--int8-max-drop",
        help="openvino-int8: layers that move the mask go back to float until its mask IoU against float on the "
             "calibration images is at least 1 minus this (default 0.02); 0: every layer INT8. Give --samples "
             "other photos to judge it on photos it was not chosen on.")),
    "min_iou": Alias("min_iou", float | None, typer.Option(
        None, "--min-iou", help="Override the parity tolerance (default 0.99 FP32/FP16, 0.97 INT8).")),
    "attach": switch("attach", "--attach/--no-attach",
                     "Copy the openvino-int8 export, once it passed parity, into the model folder (int8/), where "
                     "--runtime auto finds it."),
    "opset": Alias("opset", int | None, typer.Option(None, "--opset", help="ONNX opset (>= 17; default 17).")),
    "threads": Alias("threads", int | None, typer.Option(
        None, "--threads", help="CPU threads for the parity runs (default: every core).")),
    "dynamic_shape": switch("dynamic_shape", "--dynamic-shape/--no-dynamic-shape", DYNAMIC_HELP),
}

PARAMS = command_params(ALIASES, "calib_size=32")


def resolve_config(values: dict[str, Any], environ: Mapping[str, str] | None = None) -> ExportConfig:
    """The command's config from ``--config``, the environment, ``--set`` and the flags."""
    from cracksam.cli.export_config import ExportConfig

    cfg, _ = resolve_tree(ExportConfig, "export", ALIASES, values, environ=environ)
    return cfg


def export(print_config: bool, **values: Any) -> None:
    """Export to ONNX (LoRA merged, upsampling in the graph, dynamic batch) and OpenVINO FP32/FP16/INT8,
    then check every export against PyTorch; exits 1 (and deletes the export) when masks disagree.

    A fully convolutional model (the bundled one) is exported with any height and width and checked
    on whole photos, so predict -m model.onnx runs a photo at its own size as with the checkpoint;
    CrackSAM is exported at its fixed size.

    Every option is also a config key: --config, --set KEY=VALUE, CRACKSAM_EXPORT__* (--help-config).
    """
    cfg = resolve_config(values)  # every check that needs no file has run here, once
    if print_config:
        show_config(cfg)
        return
    from cracksam.deployment.pipeline import CALIBRATED, export_all, inputs_for_model, write_report
    from cracksam.threads import resolve_threads

    threads = resolve_threads(cfg.threads)
    names = list(cfg.targets)
    min_iou, opset, out = cfg.min_iou, cfg.opset, Path(cfg.out)
    samples, calib = [Path(p) for p in cfg.samples], [Path(p) for p in cfg.calib]
    model_path = model_path_option(cfg.model)
    net = _load_torch_model(model_path, cfg.base, cfg.allow_random_base, cfg.trust)
    from cracksam.deployment.pipeline import check_qat_model
    from cracksam.models.io import checkpoint_folder

    folder = checkpoint_folder(model_path)
    if "openvino-int8-qat" in names:
        check_qat_model(folder)
    size = net.config.image_size
    # Photos as the model sees them: resized for CrackSAM, native-scale windows for the others.
    sample_x, where = inputs_for_model(net, samples or calib or [], limit=32, synthetic_fallback=8)
    dynamic = cfg.dynamic_shape and bool(getattr(net, "dynamic_input", False))
    photos = None
    if dynamic and getattr(net.config, "inference_mode", "resize") == "native":
        from cracksam.deployment.parity_photos import photos_for_model

        photos, photo_where = photos_for_model(net, samples or calib or [])
        where = f"{photo_where}; {where} for fixed-size targets"
    calib_x = None
    needs = [n for n in names if n in CALIBRATED]
    if needs:
        if not calib:
            raise ConfigError(f"{', '.join(needs)} need(s) --calib FOLDER (a few dozen representative photos)")
        calib_x, _ = inputs_for_model(net, calib, limit=cfg.calib_size)
    output_dir(out)  # after every check: a refused export leaves no empty folder behind
    overrides = {p: min_iou for p in ("fp32", "fp16", "int8")} if min_iou is not None else None
    console = Console(stderr=True, soft_wrap=True)
    shape = "any height and width: runs at the photo's own size, as predict" if dynamic else f"{size}×{size}"
    console.print(f"exporting {model_path} ({shape}) to {', '.join(names)}; parity on {where}")
    run = export_all(net, out, names, sample_x, calib_x, overrides, opset, threads, dynamic_shape=cfg.dynamic_shape,
                     model_dir=folder, photos=photos, int8_max_drop=cfg.int8_max_drop)
    run.samples = where
    write_report(run, out / "parity.json")
    table = Table(title=f"parity against PyTorch ({where})")
    for col in ("target", "file", "checked on", "mask IoU", "F1 (2 px)", "max |Δp|", "tolerance", "result"):
        table.add_column(col)
    for r in run.results:
        table.add_row(
            r.target,
            str(r.path),
            r.parity["inputs"],
            f"{r.parity['mask_iou']:.4f}",
            f"{r.parity['mask_f1_2px']:.4f}",
            f"{r.parity['max_abs_prob_diff']:.2e}",
            f"≥ {r.min_iou}",
            "ok" if r.passed else "REFUSED (deleted)",
        )
    Console(soft_wrap=True).print(table)
    if run.failed:
        raise typer.Exit(1)
    if cfg.attach:
        from cracksam.deployment.attached_int8 import attach_int8

        (int8,) = [r for r in run.results if r.target == "openvino-int8"]
        attached = attach_int8(folder, int8.path, {**int8.parity, "passed": int8.passed, "min_iou": int8.min_iou,
                                                   "samples": where})
        console.print(f"attached {int8.path.name} to {folder} as {attached.parent.name}/: --runtime auto can run it")


def register(app: typer.Typer) -> None:
    app.command("export")(make_command("export", export.__doc__ or "", PARAMS, export))
