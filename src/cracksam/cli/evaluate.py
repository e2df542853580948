"""``cracksam evaluate``: the paper's evaluation protocol (Table 7, blur sweep, visuals)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cracksam.cli.inputs import check_output_dir
from cracksam.cli.options import DEFAULT_MODEL_NAME, MODEL_HELP, RANDOM_BASE_HELP, trust_option
from cracksam.cli.tree import COMMON, Alias, alias_params, as_strs, comma_list, make_command, resolve_tree, set_option
from cracksam.cli.tree import print_config as show_config
from cracksam.errors import ConfigError
from cracksam.inference_modes import MODE_HELP, SCALE_HELP


def _ints(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"--blur-sweep must be a comma list of integers, got {text!r}") from None


# Flags of ProtocolConfig keys (see cracksam.cli.tree: defaults < --config < CRACKSAM_EVALUATE__* <
# --set < flags); the models and where the tables go are the command's own arguments.
ALIASES: dict[str, Alias] = {
    "test": Alias("test", list[Path] | None, typer.Option(
        None, "--test", help="Dataset folder to score (repeat to combine): its test split if it has split "
        "files, else all its images (see --test-split)."), as_strs),
    "unseen": Alias("unseen", list[Path] | None, typer.Option(
        None, "--unseen", help="Dataset never trained on (zero-shot column)."), as_strs),
    "conditions": Alias("conditions", str | None, typer.Option(
        None, "--conditions", help="Conditions on the test set: clean, dim, blurry, blur:K (default "
        "clean,dim,blurry)."),
        comma_list),
    "blur_sweep": Alias("blur_kernels", str | None, typer.Option(
        None, "--blur-sweep", help="Kernel sizes for the blur sweep, e.g. 1,5,9,13,17,21,25 (default none)."), _ints),
    "test_split": Alias("test_split", str | None, typer.Option(
        None, "--test-split", help="Split of --test datasets: auto (default: test if the folder has split files "
        "train.txt/val.txt/test.txt or splits.tsv, else all images), train, val, test, all. Without split "
        "files, train/val/test are drawn by --split-seed as in training.")),
    "unseen_split": Alias("unseen_split", str | None, typer.Option(
        None, "--unseen-split", help="Split of --unseen datasets, as --test-split (default all).")),
    "split_seed": Alias("split_seed", int | None, typer.Option(
        None, "--split-seed", help="Seed of the split, as in training (default 0).")),
    "mask_threshold": Alias("mask_threshold", float | None, typer.Option(
        None, "--mask-threshold", metavar="FRACTION",
        help="Read masks as crack above this share of full scale (JPEG or anti-aliased masks); "
        "default: masks must have two levels.")),
    "threshold": Alias("threshold", float | None, typer.Option(
        None, "--threshold", help="Crack probability threshold (default 0.5).")),
    "mode": Alias("mode", str | None, typer.Option(None, "--mode", help=MODE_HELP + " Applies to every --model.")),
    "scale": Alias("scale", float | None, typer.Option(None, "--scale", help=SCALE_HELP)),
    "reduction": Alias("reduction", str | None, typer.Option(
        None, "--reduction", help="dataset (pixels pooled over the set; the default) or image (mean per image).")),
    "metric": Alias("metric", str | None, typer.Option(
        None, "--metric", help="Metric shown in the table: iou (default), f1, precision, recall (all are in the "
        "JSON).")),
    "batch_size": Alias("batch_size", int | None, typer.Option(
        None, "--batch-size", help="Images per forward pass (default 4).")),
    "workers": Alias("workers", int | None, typer.Option(
        None, "--workers", help="DataLoader worker processes reading images (default 0: in the main process).")),
    "visualize": Alias("visualize", int | None, typer.Option(
        None, "--visualize", help="Save overlays and heat-maps of the first N images of each pass (default 0).")),
    "device": Alias("device", str | None, typer.Option(
        None, "--device", help="cpu or cuda (PyTorch), CPU/GPU (OpenVINO); cpu by default, as in every command "
        "(--device cuda to use a GPU).")),
    "measure": Alias("measure", bool | None, typer.Option(
        None, "--measure/--no-measure", help="Also compare crack length/width of predictions and truth (default "
        "off).")),
    "mm_per_px": Alias("mm_per_px", float | None, typer.Option(
        None, "--mm-per-px", help="Pixel size in mm for --measure.")),
    "progress": Alias("progress", bool | None, typer.Option(
        None, "--progress/--no-progress", help="Progress bar (default) or none.")),
}

PARAMS: dict[str, tuple[Any, Any]] = {
    "model": (list[str] | None, typer.Option(None, "--model", "-m", help=MODEL_HELP + " Repeat for several.")),
    "name": (list[str] | None, typer.Option(None, "--name", help="Label of each --model in the tables (same order).")),
    "config": COMMON["config"],
    **alias_params(ALIASES),
    "base": (str | None, typer.Option(None, "--base", help="SAM base checkpoint for delta checkpoints.")),
    "allow_random_base": (bool, typer.Option(False, "--allow-random-base", help=RANDOM_BASE_HELP)),
    "trust": (bool, trust_option()),
    "out": (Path, typer.Option(Path("eval"), "--out", "-o", help="Output folder.")),
    "set_items": set_option("test_split=all"),
    "print_config": COMMON["print_config"],
    "help_config": COMMON["help_config"],
}


def evaluate(model: list[str] | None, name: list[str] | None, base: str | None, allow_random_base: bool,
             trust: bool, out: Path, print_config: bool, **values: Any) -> None:
    """Score models on test / noisy 1 / noisy 2 / unseen sets and write Table 7 as Markdown, CSV, JSON."""
    from cracksam.evaluation.protocol import ProtocolConfig, load_eval_model, run_protocol

    cfg, _ = resolve_tree(ProtocolConfig, "evaluate", ALIASES, values)
    if print_config:
        show_config(cfg)
        return
    # Checked, not created: the datasets are only read by run_protocol, and a refused run must not
    # leave an empty folder; the first result written creates it.
    check_output_dir(out)
    model = model or [DEFAULT_MODEL_NAME]
    if name and len(name) != len(model):
        raise ConfigError(f"give one --name per --model ({len(model)} models, {len(name)} names)")
    labels: list[str | None] = list(name) if name else [None] * len(model)
    models = [load_eval_model(m, base, allow_random_base, cfg.device, name=n, trust=trust)
              for m, n in zip(model, labels, strict=True)]
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        for i, m in enumerate(models):
            m.name = f"{m.name}#{i + 1}"
    summary = run_protocol(models, cfg, out)
    for label, how in summary["inference"].items():
        typer.echo(f"{label}: {how['inference']}", err=True)
    table = Table(title=f"{cfg.metric} ({cfg.reduction}-level)")
    for h in summary["header"]:
        table.add_column(h)
    for row in summary["rows"]:
        table.add_row(*row)
    Console().print(table)
    for line in scored_lines(summary["scored"]):
        typer.echo(line)
    extras = [summary.get("blur_sweep"), summary.get("per_dataset"), *summary.get("measurement", [])]
    written = [*summary["table"], *extras]
    typer.echo("wrote " + ", ".join(str(p) for p in written if p))


def scored_lines(scored: list[dict[str, Any]]) -> list[str]:
    """A line per dataset folder: how many images were scored, from which split; a folder without
    split files says that its split was drawn by seed and how to score all of its images, or, scored
    whole under ``auto``, how to score its test split instead."""
    lines = []
    for e in scored:
        split = "all images" if e["split"] == "all" else f"{e['split']} split"
        seeded = e.get("seeded")
        count = f"{e['images']} of {seeded['of']}" if seeded else str(e["images"])
        text = f"scored: {e['dataset']} (--{e['set']}): {split}, {count} image(s)"
        if e.get("requested") == "auto" and not e.get("split_files"):
            text += f" (no split files; pass --{e['set']}-split test to score its test split)"
        if seeded:
            text += (f" (no split files: a {seeded['share']:.0%} share drawn with --split-seed {seeded['seed']}, "
                     f"as training splits it; --{e['set']}-split all scores every image)")
        lines.append(text)
    return lines


def register(app: typer.Typer) -> None:
    app.command("evaluate")(make_command("evaluate", evaluate.__doc__ or "", PARAMS, evaluate))
