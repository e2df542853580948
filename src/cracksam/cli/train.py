"""``cracksam train`` and ``cracksam distill``: fine-tune CrackSAM, or train a student/baseline
from the model registry, optionally distilled from a teacher (config file and/or flags; flags win)."""

from __future__ import annotations

import functools
import shlex
from pathlib import Path

import typer

from cracksam.cli.options import DELTA_NAMES
from cracksam.errors import ConfigError

# The training modules (torch, lightning) are imported inside the command: `cracksam --help`
# must not pay for them.


def train(
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config (see --print-config)."),
    data: list[Path] | None = typer.Option(None, "--data", help="Dataset folder (repeat to combine several)."),
    val_data: list[Path] | None = typer.Option(
        None, "--val-data", help="Validation folders (default: val split of --data)."
    ),
    base: str | None = typer.Option(None, "--base", help="Official SAM checkpoint: a .pth path or vit_b/vit_l/vit_h."),
    allow_random_base: bool = typer.Option(
        False, "--allow-random-base",
        help="Train a CrackSAM whose SAM encoder keeps random weights (no --base): smoke tests only.",
    ),
    init_from: str | None = typer.Option(
        None, "--init-from", metavar="MODEL",
        help="Fine-tune this model: 'default' (the bundled one), a checkpoint or run folder; its architecture "
        "and weights are the start (see README, Fine-tuning).",
    ),
    mask_threshold: float | None = typer.Option(
        None, "--mask-threshold", metavar="FRACTION",
        help="Read masks as crack above this share of full scale (0.5: grey level 128 of 255), for JPEG or "
        "anti-aliased masks; default: masks must have two levels.",
    ),
    arch: str | None = typer.Option(
        None, "--arch", help="Train a registry network (student/baseline, see `cracksam info --list-models`) instead "
        "of CrackSAM."
    ),
    pretrained: bool | None = typer.Option(
        None, "--pretrained/--random-init", help="ImageNet encoder weights for --arch (needs the hub)."
    ),
    crop: int | None = typer.Option(None, "--crop", help="Train on random CROPxCROP windows of the resized input."),
    teacher: str | None = typer.Option(None, "--teacher", help="Distil from this model (checkpoint, .onnx, .xml)."),
    teacher_base: str | None = typer.Option(None, "--teacher-base", help="SAM base of a delta teacher."),
    kd_temperature: float | None = typer.Option(None, "--kd-temperature", help="KD temperature T (default 3)."),
    kd_weight: float | None = typer.Option(None, "--kd-weight", help="Distillation loss weight λ_s (default 5)."),
    teacher_cache: Path | None = typer.Option(None, "--teacher-cache", help="Folder of cached teacher logits."),
    backbone: str | None = typer.Option(None, "--backbone", help="vit_b (default), vit_l, vit_h or tiny."),
    delta: str | None = typer.Option(None, "--delta", help=f"{', '.join(DELTA_NAMES)} (default adapter)."),
    rank: int | None = typer.Option(None, "--rank", help="LoRA rank (default 4)."),
    targets: str | None = typer.Option(None, "--targets", help="LoRA targets (default q,v)."),
    bottleneck: int | None = typer.Option(None, "--bottleneck", help="Adapter bottleneck m (default 32)."),
    scale: float | None = typer.Option(None, "--scale", help="Adapter MLP scale s (default 0.2)."),
    image_size: int | None = typer.Option(None, "--image-size", help="Input size, a multiple of 16 (default 448)."),
    pixel_norm: str | None = typer.Option(None, "--pixel-norm", help="sam (default) or unit (official code)."),
    epochs: int | None = typer.Option(None, "--epochs", help="Training epochs (default 140)."),
    max_iters: int | None = typer.Option(None, "--max-iters", help="Optimiser steps (overrides --epochs)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Samples per step (default 8)."),
    lr: float | None = typer.Option(None, "--lr", help="AdamW learning rate (default 4e-4)."),
    warmup: int | None = typer.Option(None, "--warmup", help="Warm-up iterations (default 300)."),
    poly_power: float | None = typer.Option(None, "--poly-power", help="Power of the poly decay (default 6)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run folder (default runs/cracksam)."),
    accelerator: str | None = typer.Option(None, "--accelerator", help="cpu, gpu, auto (default: GPU if any)."),
    devices: int | None = typer.Option(None, "--devices", help="Devices per node, DDP when > 1 (default 1)."),
    num_nodes: int | None = typer.Option(None, "--num-nodes", help="Nodes (default 1)."),
    strategy: str | None = typer.Option(None, "--strategy", help="Lightning strategy: auto (default), ddp, ..."),
    precision: str | None = typer.Option(None, "--precision", help="32-true (default), 16-mixed, bf16-mixed."),
    accumulate: int | None = typer.Option(None, "--accumulate", help="Gradient accumulation steps (default 1)."),
    val_every: int | None = typer.Option(None, "--val-every", help="Epochs between validations (default 1)."),
    val_every_n_steps: int | None = typer.Option(
        None, "--val-every-n-steps", help="Validate every N optimiser steps (default: by epochs, see --val-every); "
        "the last step is always validated."
    ),
    checkpoint_every: int | None = typer.Option(
        None, "--checkpoint-every", help="Steps between resumable checkpoints (default 200)."
    ),
    workers: int | None = typer.Option(None, "--workers", help="DataLoader processes (default 2)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (default 0)."),
    no_augment: bool = typer.Option(False, "--no-augment", help="Switch flips/rotations off."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar (logs only)."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run in --out from its last checkpoint, with the config it was started with.",
    ),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved config as YAML and exit."),
) -> None:
    """Fine-tune CrackSAM (or train --arch): AdamW, warm-up + poly decay, 0.2·CE + 0.8·Dice, best model by val IoU."""
    from cracksam.config import dumps_json, load_yaml, to_dict
    from cracksam.models.deltas import DELTA_KINDS, LoRAConfig
    from cracksam.training.config import DistillConfig, TrainConfig

    cfg = load_yaml(TrainConfig, config) if config else TrainConfig()
    if arch is not None or pretrained is not None:
        from cracksam.models.segmodels import SegModelConfig

        net = cfg.network or SegModelConfig(arch=arch or "unet_mobilenetv3_small")
        cfg.network = SegModelConfig(
            arch=arch or net.arch,
            image_size=image_size if image_size is not None else net.image_size,
            pretrained=pretrained if pretrained is not None else net.pretrained,
            class_names=net.class_names,
            inference_mode=net.inference_mode,
            inference_scale=net.inference_scale,
        )
    elif image_size is not None and cfg.network is not None:
        cfg.network.image_size = image_size
        cfg.network.__post_init__()
    if teacher is not None or cfg.distill is not None:
        kd = cfg.distill or DistillConfig(teacher=teacher or "")
        cfg.distill = DistillConfig(
            teacher=teacher or kd.teacher,
            teacher_base=teacher_base if teacher_base is not None else kd.teacher_base,
            allow_random_base=kd.allow_random_base or allow_random_base,  # one flag for student and teacher
            temperature=kd_temperature if kd_temperature is not None else kd.temperature,
            weight=kd_weight if kd_weight is not None else kd.weight,
            cache_dir=str(teacher_cache) if teacher_cache is not None else kd.cache_dir,
            batch_size=kd.batch_size,
        )
    m = cfg.model
    overrides = {
        "backbone": backbone,
        "image_size": image_size,
        "pixel_norm": pixel_norm,
    }
    for key, value in overrides.items():
        if value is not None:
            setattr(m, key, value)
    if delta is not None:
        if delta not in DELTA_KINDS:
            raise ConfigError(f"--delta must be one of {', '.join(DELTA_KINDS)}, got {delta!r}")
        m.delta.kind = delta  # type: ignore[assignment]
    if rank is not None or targets is not None:
        m.delta.lora = LoRAConfig(
            rank=rank if rank is not None else m.delta.lora.rank,
            targets=[t.strip() for t in targets.split(",")] if targets else m.delta.lora.targets,
            scaling=m.delta.lora.scaling,
        )
    if bottleneck is not None:
        m.delta.adapter.bottleneck = bottleneck
    if scale is not None:
        m.delta.adapter.scale = scale
    if pixel_norm is not None and pixel_norm not in ("sam", "unit"):
        raise ConfigError(f"--pixel-norm must be sam or unit, got {pixel_norm!r}")
    m.__post_init__()
    m.delta.adapter.__post_init__()
    if data:
        cfg.data.train = [str(p) for p in data]
    if val_data:
        cfg.data.val = [str(p) for p in val_data]
    if workers is not None:
        cfg.data.num_workers = workers
    if no_augment:
        cfg.data.augment = False
    if mask_threshold is not None:
        cfg.data.mask_threshold = mask_threshold
    if lr is not None:
        cfg.optim.lr = lr
    if warmup is not None:
        cfg.optim.warmup_iters = warmup
    if poly_power is not None:
        cfg.optim.poly_power = poly_power
    if crop is not None:
        cfg.data.crop = crop
    plain = {
        "base_checkpoint": base,
        "epochs": epochs,
        "max_iters": max_iters,
        "batch_size": batch_size,
        "out_dir": str(out) if out else None,
        "accelerator": accelerator,
        "devices": devices,
        "num_nodes": num_nodes,
        "strategy": strategy,
        "precision": precision,
        "accumulate": accumulate,
        "val_every": val_every,
        "val_every_n_steps": val_every_n_steps,
        "checkpoint_every": checkpoint_every,
        "seed": seed,
    }
    for key, value in plain.items():
        if value is not None:
            setattr(cfg, key, value)
    if no_progress:
        cfg.progress = False
    if init_from is not None:
        shape_flags = {"--backbone": backbone, "--delta": delta, "--rank": rank, "--targets": targets,
                       "--bottleneck": bottleneck, "--scale": scale, "--pixel-norm": pixel_norm}
        given = [flag for flag, value in shape_flags.items() if value is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} cannot be combined with --init-from: the architecture comes "
                              "from the model fine-tuned")
        cfg.init_from = init_from
    if cfg.init_from:
        from cracksam.training.init_from import apply_init_from

        apply_init_from(cfg)
    cfg.__post_init__()
    if print_config:
        import yaml

        typer.echo(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        return

    from cracksam.cli.inputs import output_dir
    from cracksam.training.trainer import check_random_base, fit  # heavy import (lightning) only when training

    if not resume:  # before any folder is made; a resumed run was accepted when it started
        check_random_base(cfg, allow_random_base)
    output_dir(Path(cfg.out_dir))

    result = fit(cfg, resume=resume, allow_random_base=allow_random_base)
    if result.interrupted:
        # Ctrl-C: training stopped at a step boundary after writing the checkpoint.
        typer.secho(f"interrupted at step {result.global_step} of {result.max_iters}; checkpoint: {result.checkpoint}",
                    err=True)
        typer.secho(f"resume with: cracksam train --resume --out {shlex.quote(str(result.out_dir))}", err=True)
        raise typer.Exit(130)
    typer.echo(
        dumps_json(
            {
                "run": str(result.out_dir),
                "best": str(result.best_dir) if result.best_dir else None,
                "best_val_iou": result.best_iou,
                "steps": result.global_step,
                "max_iters": result.max_iters,
            }
        )
    )


@functools.wraps(train)
def distill(**kwargs) -> None:
    if not kwargs.get("teacher") and not kwargs.get("config"):
        raise ConfigError("distill needs a teacher: --teacher MODEL (or distill.teacher in --config)")
    return train(**kwargs)


distill.__doc__ = (
    "Channel-wise knowledge distillation (T=3, λ=5) from --teacher into a student (--arch): the teacher's logits "
    "are computed once and cached, then the student trains on L_hard + λ·L_cwd."
)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("distill")(distill)
