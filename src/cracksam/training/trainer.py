"""``fit``: one training run from a :class:`TrainConfig`, resumable after a crash or Ctrl-C.

Run folder layout::

    <out_dir>/config.yaml             resolved config of the run (the sections it uses)
    <out_dir>/best/                   best model by validation IoU (CrackSAM delta, or a whole student;
                                      when fine-tuning, the start model until one beats it)
    <out_dir>/teacher_cache/          cached teacher logits when distilling (float16 .npy)
    <out_dir>/checkpoints/last.ckpt   resumable Lightning checkpoint (trainable weights, optimiser,
                                      scheduler, loop and data state, best-model record), written
                                      atomically every ``checkpoint_every`` steps, at Ctrl-C (at
                                      the next step boundary) and at the end; not on other
                                      exceptions (mid-step state is not resumable)
    <out_dir>/checkpoints/previous.ckpt  the one before (used when last.ckpt is damaged)
    <out_dir>/logs/partN/metrics.csv  CSV log, one part per start (resumes add parts);
    <out_dir>/tb/partN/               TensorBoard log
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from cracksam.config import load_yaml
from cracksam.data import load_split
from cracksam.errors import ConfigError, CrackSAMWarning
from cracksam.models.cracksam import build_cracksam
from cracksam.models.io import checkpoint_folder
from cracksam.models.quantizers import attach_quantizers, has_quantizer_files
from cracksam.models.sam_checkpoint import load_sam_checkpoint
from cracksam.models.segmodels import build_segmodel
from cracksam.training.checkpoints import (
    LAST,
    PREVIOUS,
    InterruptFlag,
    RngState,
    SafeCheckpointIO,
    StepCheckpoint,
    TrainingInterrupted,
    choose_resume_checkpoint,
)
from cracksam.training.config import TrainConfig
from cracksam.training.datamodule import CrackDataModule
from cracksam.training.encoder_delta import apply_encoder_delta, describe_delta
from cracksam.training.init_from import apply_init_from, load_init_model
from cracksam.training.module import BestDeltaCheckpoint, SegmentationModule, steps_per_epoch
from cracksam.training.progress import progress_callback, quiet_lightning
from cracksam.training.qat import calibration_batches, insert_quantizers, keep_float
from cracksam.training.run_config import save_run_config

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    out_dir: Path
    best_dir: Path | None
    best_iou: float | None
    global_step: int
    max_iters: int
    interrupted: bool = False  # stopped by Ctrl-C (at a step boundary, checkpoint written)
    checkpoint: Path | None = None  # the resumable checkpoint
    start_iou: float | None = None  # fine-tuning: the start model's validation score (step 0)


def _load_samples(config: TrainConfig):
    data = config.data
    if not data.train:
        raise ConfigError("no training data: give --data FOLDER (or data.train in the config)")
    ratios, seed, source = tuple(data.ratios), data.split_seed, data.split_source
    train = load_split(data.train, "train", ratios, seed, source, mask_threshold=data.mask_threshold)
    val = load_split(data.val or data.train, "val", ratios, seed, source, mask_threshold=data.mask_threshold)
    return train, val


def check_random_base(config: TrainConfig, allow_random_base: bool = False) -> None:
    """Refuse to train a CrackSAM whose SAM encoder has official weights to start from but was given
    none: the encoder is frozen, so such a run trains a head on random features and yields a
    useless model with no error (``tiny`` has no official weights and is exempt)."""
    if config.network is not None or config.base_checkpoint or allow_random_base:
        return
    from cracksam.models.backbones import get_backbone

    backbone = config.model.backbone
    if get_backbone(backbone).checkpoint_url is None:
        return
    if config.distill is not None:
        raise ConfigError(
            f"distill without --arch trains a CrackSAM {backbone} student whose SAM encoder keeps random weights; "
            "name a student with --arch (see `cracksam info --list-models`), give --base for a CrackSAM student, "
            "or pass --allow-random-base (smoke tests only)"
        )
    raise ConfigError(
        f"no --base: the frozen SAM {backbone} encoder would keep random weights and the run would learn nothing "
        f"useful; pass --base {backbone} (downloads the official checkpoint) or --base PATH.pth, "
        "or --allow-random-base (smoke tests only)"
    )


def _build_model(config: TrainConfig, allow_random_base: bool = False):
    if config.init_from:
        log.info("starting from the weights of %s", config.init_from)
        return load_init_model(config, allow_random_base=allow_random_base)
    if config.network is not None:
        if config.network.pretrained:
            log.info("%s: ImageNet encoder weights from an installed package", config.network.arch)
        else:
            log.info("%s: starting from random weights", config.network.arch)
        return build_segmodel(config.network)
    model = build_cracksam(config.model)
    if config.base_checkpoint:
        report = load_sam_checkpoint(model, config.base_checkpoint)
        log.info(report.summary())
    else:
        check_random_base(config, allow_random_base)  # fit() checked already; kept for direct callers
        warnings.warn("no base checkpoint: the SAM encoder keeps random weights", CrackSAMWarning, stacklevel=4)
    return model


def _teacher_cache(config: TrainConfig, train, out: Path):
    """Open the teacher and compute its logits for every training sample not cached yet."""
    import torch

    from cracksam.inference.predictor import Predictor
    from cracksam.training.teacher import TeacherCache, fill_cache, teacher_identity

    kd = config.distill
    assert kd is not None  # only called for a distillation run
    # The teacher runs where the student trains (a CUDA device when training on one).
    device = "cuda" if config.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available() else "cpu"
    predictor = Predictor.from_path(kd.teacher, base=kd.teacher_base, device=device,
                                    allow_random_base=kd.allow_random_base)
    backend = predictor.backend
    cache = TeacherCache(kd.cache_dir or out / "teacher_cache", teacher_identity(kd.teacher), backend.image_size)
    computed = fill_cache(cache, backend, train, batch_size=kd.batch_size, progress=config.progress)
    log.info("teacher logits: %d computed, %d cached", computed, len(train) - computed)
    del predictor, backend  # the teacher is not needed while the student trains
    return cache


def _drop_parts(out: Path, part: str) -> None:
    """Remove this start's log folders (a start that trained nothing must not leave empty parts)."""
    for root in ("logs", "tb"):
        shutil.rmtree(out / root / part, ignore_errors=True)


def _rank_zero() -> bool:
    # DDP children are re-launched copies of the command with these set (before any Trainer exists).
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def fit(config: TrainConfig, resume: bool = False, extra_callbacks: list[L.Callback] | None = None,
        allow_random_base: bool = False) -> FitResult:
    """Train (or with ``resume`` continue) the run described by ``config``.  ``allow_random_base``:
    train a CrackSAM on a SAM backbone without ``base_checkpoint`` (refused otherwise, see
    :func:`check_random_base`); a resumed run was accepted when it started.

    Ctrl-C stops at the next optimiser step, after writing the checkpoint: the result then has
    ``interrupted`` set.  A resumed run continues the data order, the augmentation stream, the
    optimiser, the schedule and the best-model record where they stopped, so it ends with the
    weights the uninterrupted run would have had (bit for bit on the CPU)."""
    with quiet_lightning():  # no Lightning tips or internal deprecation warnings around our output
        return _fit(config, resume, extra_callbacks, allow_random_base)


def _fit(config: TrainConfig, resume: bool, extra_callbacks: list[L.Callback] | None,
         allow_random_base: bool) -> FitResult:
    out = Path(config.out_dir)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / LAST
    start = None
    if resume:
        saved = out / "config.yaml"
        if not saved.is_file() or not (last.exists() or (ckpt_dir / PREVIOUS).exists()):
            raise ConfigError(f"{out}: nothing to resume (no checkpoints/last.ckpt or config.yaml)")
        # The run continues with the config it started with; a different one would not match
        # the optimiser state.  Only how it reports progress may change (`--resume --no-progress`).
        config = dataclasses.replace(load_yaml(TrainConfig, saved), progress=config.progress)
        start = choose_resume_checkpoint(ckpt_dir, move_damaged=_rank_zero())
    elif last.exists():
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    else:
        apply_init_from(config)  # the CLI did already; direct callers may not have
        check_random_base(config, allow_random_base)

    # Seeds the model's initialisation (a random frozen encoder must come out the same on resume);
    # the data stream has its own seeds (data.sampling) and the global torch state after a resume
    # comes from the checkpoint (RngState), so nothing restarts from the seed.
    L.seed_everything(config.seed, workers=True, verbose=False)
    train, val = _load_samples(config)
    per_epoch = steps_per_epoch(config.data.samples_per_epoch or len(train), config)
    max_iters = config.max_iters or per_epoch * config.epochs
    epochs = math.ceil(max_iters / per_epoch)
    world = config.devices * config.num_nodes
    batches = math.ceil((config.data.samples_per_epoch or len(train)) / (config.batch_size * world))
    # Validation is scheduled in training batches across epochs (Lightning's val_check_interval
    # with check_val_every_n_epoch=None): every val_every epochs, or every val_every_n_steps steps.
    val_interval = (config.val_every_n_steps * config.accumulate if config.val_every_n_steps
                    else batches * config.val_every)

    model = _build_model(config, allow_random_base=allow_random_base or resume)
    if config.encoder_delta.enabled:  # frozen encoder + LoRA, before the optimiser and a resumed state exist
        model = apply_encoder_delta(model, config.encoder_delta)
        if _rank_zero():
            print(describe_delta(model), file=sys.stderr, flush=True)
    if config.quantization_aware:
        # Before the module and the optimiser exist (the quantisers train too) and before a
        # resumed checkpoint is loaded (its state holds the trained quantisers).
        assert config.qat is not None  # quantization_aware says so
        source = checkpoint_folder(config.init_from) if config.init_from else None
        if source is not None and has_quantizer_files(source):
            model = attach_quantizers(model, source).train()  # fine-tuning a QAT model: keep its quantisers
        else:
            first = calibration_batches(CrackDataModule(train, val, config).train_dataloader(),
                                        config.qat.calibration_batches)
            model = insert_quantizers(model, first)
            keep_float(model, config.qat.float_layers)
    module = SegmentationModule(model, config, max_iters)

    # The teacher is opened (and its logits cached) before the run's config is written, so a bad
    # teacher leaves no run behind.
    teacher = _teacher_cache(config, train, out) if config.distill is not None else None
    out.mkdir(parents=True, exist_ok=True)
    if not resume:
        save_run_config(config, out / "config.yaml")
    # Fine-tuning scores its start model before the first step (a resumed run did so already).
    score_start = bool(config.init_from) and not resume
    best = BestDeltaCheckpoint(out / "best", config.base_checkpoint, monitor=f"val/{config.monitor}",
                               score_start=score_start)
    interrupt = InterruptFlag()
    steps = StepCheckpoint(last, config.checkpoint_every, interrupt, max_steps=max_iters)
    # steps after best: a checkpoint written at a validation step holds the updated best record.
    callbacks: list[L.Callback] = [RngState(), best, steps, *(extra_callbacks or [])]
    progress = progress_callback(config, max_iters)  # a bar on a terminal, plain lines otherwise
    callbacks.append(progress)
    # Each start of the run logs into its own part (CSVLogger would overwrite a previous file).
    part = f"part{len(list((out / 'logs').glob('part*')))}"
    trainer = L.Trainer(
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        precision=config.precision,
        accumulate_grad_batches=config.accumulate,
        max_steps=max_iters,
        max_epochs=epochs,
        check_val_every_n_epoch=None,
        val_check_interval=val_interval,
        num_sanity_val_steps=-1 if score_start else 0,  # -1: the whole validation set
        callbacks=callbacks,
        logger=[CSVLogger(out, name="logs", version=part), TensorBoardLogger(out, name="tb", version=part)],
        log_every_n_steps=max(1, min(50, per_epoch)),
        enable_progress_bar=isinstance(progress, RichProgressBar),
        enable_model_summary=False,
        enable_checkpointing=False,  # StepCheckpoint writes the checkpoints (Lightning's own would add more)
        default_root_dir=out,
        use_distributed_sampler=False,  # the data module's samplers split the data between ranks
        plugins=[SafeCheckpointIO()],
    )
    data = CrackDataModule(train, val, config, teacher=teacher)
    interrupted: TrainingInterrupted | None = None
    try:
        with interrupt.installed():
            trainer.fit(module, datamodule=data, ckpt_path=str(start) if start else None, weights_only=True)
    except TrainingInterrupted as exc:
        interrupted = exc
    except SystemExit:
        # Lightning exits 1 on a second Ctrl-C; it is still an interrupt (exit 130 in the CLI).
        if not interrupt.requested:
            raise
        raise KeyboardInterrupt from None
    except BaseException:
        if steps.trained_batches == 0 and _rank_zero():
            _drop_parts(out, part)
        raise
    best_dir = out / "best" if (out / "best" / "config.json").exists() else None
    return FitResult(out, best_dir, None if best.best == -math.inf else best.best, trainer.global_step, max_iters,
                     interrupted=interrupted is not None, checkpoint=last if last.exists() else None,
                     start_iou=best.start_score)
