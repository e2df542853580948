"""``cracksam evaluate``: the paper's evaluation protocol (Table 7, blur sweep, visuals)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cracksam.cli.inputs import check_output_dir
from cracksam.cli.options import DEFAULT_MODEL_NAME, MODEL_HELP, RANDOM_BASE_HELP, trust_option
from cracksam.errors import ConfigError
from cracksam.inference_modes import MODE_HELP, SCALE_HELP, check_options


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"{what} must be a comma list of integers, got {text!r}") from None


def evaluate(
    model: list[str] | None = typer.Option(None, "--model", "-m", help=MODEL_HELP + " Repeat for several."),
    name: list[str] | None = typer.Option(None, "--name", help="Label of each --model in the tables (same order)."),
    test: list[Path] | None = typer.Option(
        None, "--test", help="Dataset whose test split is scored (repeat to combine)."
    ),
    unseen: list[Path] | None = typer.Option(None, "--unseen", help="Dataset never trained on (zero-shot column)."),
    conditions: str = typer.Option("clean,dim,blurry", help="Conditions on the test set: clean, dim, blurry, blur:K."),
    blur_sweep: str = typer.Option("", "--blur-sweep", help="Kernel sizes for the blur sweep, e.g. 1,5,9,13,17,21,25."),
    test_split: str = typer.Option("test", help="Split of --test datasets (train, val, test, all)."),
    unseen_split: str = typer.Option("all", help="Split of --unseen datasets."),
    split_seed: int = typer.Option(0, help="Seed of the split (as in training)."),
    mask_threshold: float | None = typer.Option(
        None, "--mask-threshold", metavar="FRACTION",
        help="Read masks as crack above this share of full scale (JPEG or anti-aliased masks); "
        "default: masks must have two levels.",
    ),
    base: str | None = typer.Option(None, "--base", help="SAM base checkpoint for delta checkpoints."),
    allow_random_base: bool = typer.Option(False, "--allow-random-base", help=RANDOM_BASE_HELP),
    trust: bool = trust_option(),
    threshold: float = typer.Option(0.5, help="Crack probability threshold."),
    mode: str | None = typer.Option(None, "--mode", help=MODE_HELP + " Applies to every --model."),
    scale: float | None = typer.Option(None, "--scale", help=SCALE_HELP),
    reduction: str = typer.Option("dataset", help="dataset (pixels pooled over the set) or image (mean per image)."),
    metric: str = typer.Option("iou", help="Metric shown in the table (all are in the JSON)."),
    batch_size: int = typer.Option(4, help="Images per forward pass."),
    workers: int = typer.Option(0, help="DataLoader worker processes reading images (0: in the main process)."),
    visualize: int = typer.Option(0, help="Save overlays and heat-maps of the first N images of each pass."),
    device: str = typer.Option("cpu", help="cpu or cuda (PyTorch), CPU/GPU (OpenVINO); cpu by default, as in every "
                               "command (--device cuda to use a GPU)."),
    measure: bool = typer.Option(False, "--measure", help="Also compare crack length/width of predictions and truth."),
    mm_per_px: float | None = typer.Option(None, "--mm-per-px", help="Pixel size in mm for --measure."),
    out: Path = typer.Option(Path("eval"), "--out", "-o", help="Output folder."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    """Score models on test / noisy 1 / noisy 2 / unseen sets and write Table 7 as Markdown, CSV, JSON."""
    from cracksam.evaluation.protocol import ProtocolConfig, load_eval_model, run_protocol

    check_options(mode, scale)
    if mm_per_px is not None and not measure:
        raise ConfigError("--mm-per-px only applies with --measure; add --measure (or drop it)")
    cfg = ProtocolConfig(
        test=[str(t) for t in test or []],
        unseen=[str(u) for u in unseen or []],
        conditions=[c.strip() for c in conditions.split(",") if c.strip()],
        blur_kernels=_ints(blur_sweep, "--blur-sweep"),
        test_split=test_split,
        unseen_split=unseen_split,
        split_seed=split_seed,
        threshold=threshold,
        mode=mode,
        scale=scale,
        reduction=reduction,
        metric=metric,
        batch_size=batch_size,
        workers=workers,
        visualize=visualize,
        device=device,
        progress=not no_progress,
        measure=measure,
        mm_per_px=mm_per_px,
        mask_threshold=mask_threshold,
    )
    # Checked, not created: the datasets are only read by run_protocol, and a refused run must not
    # leave an empty folder; the first result written creates it.
    check_output_dir(out)
    model = model or [DEFAULT_MODEL_NAME]
    if name and len(name) != len(model):
        raise ConfigError(f"give one --name per --model ({len(model)} models, {len(name)} names)")
    labels: list[str | None] = list(name) if name else [None] * len(model)
    models = [load_eval_model(m, base, allow_random_base, device, name=n, trust=trust)
              for m, n in zip(model, labels, strict=True)]
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        for i, m in enumerate(models):
            m.name = f"{m.name}#{i + 1}"
    summary = run_protocol(models, cfg, out)
    for label, how in summary["inference"].items():
        typer.echo(f"{label}: {how['inference']}", err=True)
    table = Table(title=f"{metric} ({reduction}-level)")
    for h in summary["header"]:
        table.add_column(h)
    for row in summary["rows"]:
        table.add_row(*row)
    Console().print(table)
    extras = [summary.get("blur_sweep"), summary.get("per_dataset"), *summary.get("measurement", [])]
    written = [*summary["table"], *extras]
    typer.echo("wrote " + ", ".join(str(p) for p in written if p))


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
