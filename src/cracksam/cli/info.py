"""``cracksam info``: parameter counts of a CrackSAM configuration or of any registered model
(built on the meta device, so even ViT-H needs no memory), and ``--list-models``: every name
:func:`cracksam.models.create` accepts, with its role and a description."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cracksam.cli.options import (
    BackboneOpt,
    BottleneckOpt,
    DeltaOpt,
    ImageSizeOpt,
    RankOpt,
    ScaleOpt,
    TargetsOpt,
    model_config_from_options,
)
from cracksam.config import to_dict
from cracksam.models.backbones import BACKBONES, PATCH_SIZE
from cracksam.models.cracksam import CrackSAMConfig, build_cracksam, count_parameters
from cracksam.models.io import read_checkpoint_config
from cracksam.models.registry import create, list_models
from cracksam.models.segmodels import (
    SegModel,
    SegModelConfig,
    build_segmodel,
    get_architecture,
    list_architectures,
)


def _millions(value: int) -> str:
    # One decimal as in the paper's tables; small deltas (LoRA r=1: 0.16 M) need two.
    return f"{value / 1e6:.1f}" if value >= 1_000_000 or value == 0 else f"{value / 1e6:.2f}"


def _describe_models() -> list[dict[str, object]]:
    """Every registered name with its role and a description (no model is built)."""
    seg = set(list_architectures())
    rows: list[dict[str, object]] = []
    for name in list_models():
        if name in seg:
            spec = get_architecture(name)
            rows.append({"name": name, "role": spec.role, "description": spec.description,
                         "multiple": spec.multiple, "paper_params_m": spec.paper_params_m})
        else:
            backbone = next((b for b in sorted(BACKBONES, key=len, reverse=True)
                             if name.startswith(f"cracksam_{b}_")), "?")
            delta = name[len(f"cracksam_{backbone}_"):].replace("_", "+")
            rows.append({"name": name, "role": "cracksam",
                         "description": f"CrackSAM, SAM {backbone} image encoder, delta {delta}",
                         "multiple": PATCH_SIZE, "paper_params_m": None})
    return rows


def _print_model_list(as_json: bool) -> None:
    rows = _describe_models()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Registered models (cracksam info --model NAME for parameter counts)")
    for column in ("name", "role", "size multiple", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["name"]), str(row["role"]), str(row["multiple"]), str(row["description"]))
    Console(width=max(160, Console().width)).print(table)


def _build_segmodel_for_counting(config: SegModelConfig) -> SegModel:
    """On the meta device where the libraries allow it (no memory, no initialisation); some
    builders read tensor values while constructing (SegFormer's drop-path schedule), so fall back
    to a CPU build with random weights."""
    try:
        return build_segmodel(config, device="meta")
    except (RuntimeError, NotImplementedError):
        return build_segmodel(config)


def _segmodel_info(config: SegModelConfig, as_json: bool) -> None:
    spec = get_architecture(config.arch)
    model = _build_segmodel_for_counting(config)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if as_json:
        payload = {
            "model": to_dict(config),
            "role": spec.role,
            "description": spec.description,
            "total_parameters": total,
            "trainable_parameters": trainable,
            "paper_parameters_m": spec.paper_params_m,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table(title=f"{config.arch} @ {config.image_size} ({spec.role})", caption=spec.description)
    table.add_column("parameters")
    table.add_column("count (M)", justify="right")
    table.add_column("exact", justify="right")
    table.add_row("total", _millions(total), f"{total:,}")
    table.add_row("trainable", _millions(trainable), f"{trainable:,}")
    if spec.paper_params_m is not None:
        table.add_row("reported in the paper", f"{spec.paper_params_m:.1f}", "")
    Console().print(table)


def info(
    backbone: str = BackboneOpt,
    delta: str = DeltaOpt,
    rank: int = RankOpt,
    targets: str = TargetsOpt,
    bottleneck: int = BottleneckOpt,
    scale: float = ScaleOpt,
    image_size: int = ImageSizeOpt,
    model: str | None = typer.Option(
        None, "--model",
        help="A registered model name (see --list-models) or a checkpoint folder (overrides the options above; "
             "--image-size still applies to a registered name).",
    ),
    list_names: bool = typer.Option(False, "--list-models", help="List every registered model name and exit."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON with exact integer counts."),
) -> None:
    """Print total and trainable parameters of a CrackSAM configuration or a registered model."""
    if list_names:
        _print_model_list(as_json)
        return
    if model is not None and Path(model).exists():
        config = read_checkpoint_config(model)["model_config"]
    elif model is not None and model in list_architectures():
        config = SegModelConfig(arch=model, image_size=image_size)
    elif model is not None:  # a CrackSAM name (unknown names: ConfigError)
        config = create(model, device="meta", image_size=image_size).config
    else:
        config = model_config_from_options(backbone, delta, rank, targets, bottleneck, scale, image_size)
    if isinstance(config, SegModelConfig):
        _segmodel_info(config, as_json)
        return
    assert isinstance(config, CrackSAMConfig)
    backbone, image_size = config.backbone, config.image_size
    counts = count_parameters(build_cracksam(config, device="meta"))
    if as_json:
        payload = {
            "model": to_dict(config),
            "delta": config.delta.describe(),
            "total_parameters": counts.total,
            "trainable_parameters": counts.trainable,
            "delta_parameters": counts.delta,
            "head_parameters": counts.head,
            "delta_share_of_total": counts.delta / counts.total,
            "trainable_share_of_total": counts.trainable / counts.total,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table(title=f"CrackSAM {backbone} @ {image_size}, delta: {config.delta.describe()}")
    table.add_column("parameters")
    table.add_column("count (M)", justify="right")
    table.add_column("share of total", justify="right")
    for label, value in (
        ("total", counts.total),
        ("trainable", counts.trainable),
        ("  delta (adapter/LoRA)", counts.delta),
        ("  prompt encoder + mask decoder", counts.head),
    ):
        table.add_row(label, _millions(value),
                      f"{100 * value / counts.total:.2f} %")
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("info")(info)
