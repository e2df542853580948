"""``cracksam info``: parameter counts of a CrackSAM configuration or of any registered model
(built on the meta device, so even ViT-H needs no memory), and ``--list-models``: every name
:func:`cracksam.models.create` accepts, with its role and a description."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cracksam.cli.options import DEFAULT_MODEL_NAME, how_it_runs, trust_option

# The CrackSAM options default to None so that `info` with none of them describes the bundled
# model; their usual values are filled in when one is given.
_CRACKSAM_DEFAULTS = {"backbone": "vit_b", "delta": "adapter", "rank": 4, "targets": "q,v", "bottleneck": 32,
                      "scale": 0.2, "image_size": 448}


def _millions(value: int) -> str:
    # One decimal as in the paper's tables; small deltas (LoRA r=1: 0.16 M) need two.
    return f"{value / 1e6:.1f}" if value >= 1_000_000 or value == 0 else f"{value / 1e6:.2f}"


def _parameter_table(total: int, trainable: int) -> Table:
    """The parameter counts of a network (millions and exact), total and trainable."""
    table = Table()
    table.add_column("parameters")
    table.add_column("count (M)", justify="right")
    table.add_column("exact", justify="right")
    table.add_row("total", _millions(total), f"{total:,}")
    table.add_row("trainable", _millions(trainable), f"{trainable:,}")
    return table


def _describe_models() -> list[dict[str, object]]:
    """Every registered name with its metadata (no model is built)."""
    from cracksam.models.registry import list_models, model_entry

    return [model_entry(name).metadata() for name in list_models()]


def _print_model_list(as_json: bool) -> None:
    rows = _describe_models()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Registered models (cracksam info --model NAME for parameter counts)")
    for column in ("name", "role", "backbone", "delta", "input", "mode", "size multiple", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["name"]), str(row["role"]), str(row["backbone"]), str(row["delta"] or "-"),
                      str(row["default_image_size"]), str(row["default_inference_mode"]), str(row["multiple"]),
                      str(row["description"]))
    Console(width=max(160, Console().width)).print(table)


def _build_segmodel_for_counting(config: Any) -> Any:
    """On the meta device where the libraries allow it (no memory, no initialisation); some
    builders read tensor values while constructing (SegFormer's drop-path schedule), so fall back
    to a CPU build with random weights."""
    from cracksam.models.segmodels import build_segmodel

    try:
        return build_segmodel(config, device="meta", load_pretrained=False)
    except (RuntimeError, NotImplementedError):
        return build_segmodel(config, load_pretrained=False)


def _segmodel_info(config: Any, as_json: bool) -> None:
    from cracksam.config import to_dict
    from cracksam.models.segmodels import get_architecture

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
    console = Console()
    console.print(f"{config.arch} ({spec.role}) {how_it_runs(config.inference_mode, config.image_size)}",
                  highlight=False)
    table = _parameter_table(total, trainable)
    if spec.paper_params_m is not None:
        table.add_row("reported in the paper", f"{spec.paper_params_m:.1f}", "")
    console.print(table)
    console.print(spec.description, style="dim", highlight=False)


def _recorded_info(meta: dict[str, Any], as_json: bool) -> None:
    """A full SegModel checkpoint from its config.json (every parameter of a SegModel is trainable)."""
    config, total = meta["model"], int(meta["num_parameters"])
    if as_json:
        payload = {"model": config, "total_parameters": total, "trainable_parameters": total,
                   "buffer_values": meta.get("num_buffer_values")}
        typer.echo(json.dumps(payload, indent=2))
        return
    console = Console()
    console.print(f"{config['arch']} {how_it_runs(config.get('inference_mode', 'native'), config['image_size'])}",
                  highlight=False)
    console.print(_parameter_table(total, total))
    console.print(f"cracksam info --model {config['arch']} describes the architecture.", style="dim", highlight=False)


def info(
    backbone: str | None = typer.Option(None, "--backbone", help="SAM backbone: vit_b (default), vit_l, vit_h, tiny."),
    delta: str | None = typer.Option(None, "--delta", help="Delta: none, adapter (default), lora, adapter+lora, full."),
    rank: int | None = typer.Option(None, "--rank", help="LoRA rank r (default 4)."),
    targets: str | None = typer.Option(None, "--targets", help="LoRA targets: q, k, v, o (default q,v)."),
    bottleneck: int | None = typer.Option(None, "--bottleneck", help="Adapter bottleneck width m (default 32)."),
    scale: float | None = typer.Option(None, "--scale", help="Scale s of the MLP-parallel adapter (default 0.2)."),
    image_size: int | None = typer.Option(None, "--image-size", help="Input size, a multiple of 16 (default 448)."),
    model: str | None = typer.Option(
        None, "--model", "-m",
        help="A registered model name (see --list-models), a checkpoint or run folder, or 'default' (the bundled "
             "model; used when neither --model nor a CrackSAM option above is given). --image-size still applies "
             "to a registered name.",
    ),
    list_names: bool = typer.Option(False, "--list-models", help="List every registered model name and exit."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON with exact integer counts."),
    trust: bool = trust_option(),
) -> None:
    """Print total and trainable parameters of the bundled model, a checkpoint, a registered model or a
    CrackSAM configuration."""
    if list_names:
        _print_model_list(as_json)
        return
    given = {"backbone": backbone, "delta": delta, "rank": rank, "targets": targets, "bottleneck": bottleneck,
             "scale": scale, "image_size": image_size}
    if model is None and all(v is None for v in given.values()):
        model = DEFAULT_MODEL_NAME
    if model is not None and (Path(model).exists() or model == DEFAULT_MODEL_NAME):
        from cracksam.cli.light_models import light_segmodel_meta

        meta = light_segmodel_meta(model, trust)  # the counts config.json records: no torch needed
        if meta is not None:
            _recorded_info(meta, as_json)
            return
    from cracksam.cli.options import model_config_from_options, model_path_option
    from cracksam.models.cracksam import CrackSAMConfig
    from cracksam.models.io import read_checkpoint_config
    from cracksam.models.registry import create
    from cracksam.models.segmodels import SegModelConfig, list_architectures

    options: dict[str, Any] = {k: _CRACKSAM_DEFAULTS[k] if v is None else v for k, v in given.items()}
    config: Any
    if model is not None and (Path(model).exists() or model == DEFAULT_MODEL_NAME):
        config = read_checkpoint_config(model_path_option(model), trust=trust)["model_config"]
    elif model is not None and model in list_architectures():
        config = SegModelConfig(arch=model, image_size=options["image_size"])
    elif model is not None:  # a CrackSAM name (unknown names: ConfigError)
        config = create(model, device="meta", image_size=options["image_size"]).config
    else:
        config = model_config_from_options(**options)
    if isinstance(config, SegModelConfig):
        _segmodel_info(config, as_json)
        return
    assert isinstance(config, CrackSAMConfig)
    from cracksam.config import to_dict
    from cracksam.models.cracksam import build_cracksam, count_parameters

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
    table = Table(title=f"CrackSAM {config.backbone} @ {config.image_size}, delta: {config.delta.describe()}")
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
