"""``fit``: one training run from a :class:`TrainConfig`, resumable after a crash or Ctrl-C.

Run folder layout::

    <out_dir>/config.yaml             resolved config of the run
    <out_dir>/best/                   best model by validation IoU (CrackSAM delta, or a whole student)
    <out_dir>/teacher_cache/          cached teacher logits when distilling (float16 .npy)
    <out_dir>/checkpoints/last.ckpt   resumable Lightning checkpoint (trainable weights, optimiser,
                                      scheduler, loop state), written every ``checkpoint_every``
                                      steps, on an exception or Ctrl-C, and at the end
    <out_dir>/logs/partN/metrics.csv  CSV log, one part per start (resumes add parts);
    <out_dir>/tb/partN/               TensorBoard log
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from cracksam.config import load_yaml, save_yaml
from cracksam.data import load_split
from cracksam.errors import ConfigError
from cracksam.models.cracksam import build_cracksam
from cracksam.models.sam_checkpoint import load_sam_checkpoint
from cracksam.models.segmodels import build_segmodel
from cracksam.training.config import TrainConfig
from cracksam.training.module import (
    BestDeltaCheckpoint,
    CrackDataModule,
    SaveOnException,
    SegmentationModule,
    steps_per_epoch,
)

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    out_dir: Path
    best_dir: Path | None
    best_iou: float | None
    global_step: int
    max_iters: int


def _load_samples(config: TrainConfig):
    data = config.data
    if not data.train:
        raise ConfigError("no training data: give --data FOLDER (or data.train in the config)")
    kw = {"ratios": tuple(data.ratios), "seed": data.split_seed, "split_source": data.split_source}
    train = load_split(data.train, "train", **kw)
    val = load_split(data.val, "val", **kw) if data.val else load_split(data.train, "val", **kw)
    return train, val


def _build_model(config: TrainConfig):
    if config.network is not None:
        if config.network.pretrained:
            log.info("%s: ImageNet encoder weights requested (downloaded from the hub)", config.network.arch)
        else:
            log.info("%s: starting from random weights", config.network.arch)
        return build_segmodel(config.network)
    model = build_cracksam(config.model)
    if config.base_checkpoint:
        report = load_sam_checkpoint(model, config.base_checkpoint)
        log.info(report.summary())
    else:
        warnings.warn("no base checkpoint: the SAM encoder keeps random weights", stacklevel=3)
    return model


def _teacher_cache(config: TrainConfig, train, out: Path):
    """Open the teacher and compute its logits for every training sample not cached yet."""
    import torch

    from cracksam.deployment.predictor import Predictor
    from cracksam.training.teacher import TeacherCache, fill_cache, teacher_identity

    kd = config.distill
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


def fit(config: TrainConfig, resume: bool = False, extra_callbacks: list[L.Callback] | None = None) -> FitResult:
    out = Path(config.out_dir)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    if resume:
        saved = out / "config.yaml"
        if not last.is_file() or not saved.is_file():
            raise ConfigError(f"{out}: nothing to resume (no checkpoints/last.ckpt or config.yaml)")
        # The run continues with the config it started with; a different one would not match
        # the optimiser state.
        config = load_yaml(TrainConfig, saved)
    elif last.exists():
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it or choose another --out")

    L.seed_everything(config.seed, workers=True, verbose=False)
    train, val = _load_samples(config)
    per_epoch = steps_per_epoch(config.data.samples_per_epoch or len(train), config)
    max_iters = config.max_iters or per_epoch * config.epochs
    epochs = math.ceil(max_iters / per_epoch)

    model = _build_model(config)
    module = SegmentationModule(model, config, max_iters)

    # The teacher is opened (and its logits cached) before the run's config is written, so a bad
    # teacher leaves no run behind.
    teacher = _teacher_cache(config, train, out) if config.distill is not None else None
    out.mkdir(parents=True, exist_ok=True)
    if not resume:
        save_yaml(config, out / "config.yaml")
    best = BestDeltaCheckpoint(out / "best", config.base_checkpoint, monitor=f"val/{config.monitor}")
    callbacks: list[L.Callback] = [
        ModelCheckpoint(dirpath=ckpt_dir, save_top_k=0, save_last=True, every_n_train_steps=config.checkpoint_every),
        SaveOnException(last),
        best,
        *(extra_callbacks or []),
    ]
    if config.progress:
        callbacks.append(RichProgressBar())
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
        check_val_every_n_epoch=config.val_every,
        num_sanity_val_steps=0,
        callbacks=callbacks,
        logger=[CSVLogger(out, name="logs", version=part), TensorBoardLogger(out, name="tb", version=part)],
        log_every_n_steps=max(1, min(50, per_epoch)),
        enable_progress_bar=config.progress,
        enable_model_summary=False,
        default_root_dir=out,
    )
    trainer.fit(
        module,
        datamodule=CrackDataModule(train, val, config, teacher=teacher),
        ckpt_path=str(last) if resume else None,
        weights_only=True,
    )
    trainer.save_checkpoint(last, weights_only=False)  # full state: resumable
    best_dir = out / "best" if (out / "best" / "config.json").exists() else None
    return FitResult(out, best_dir, None if best.best == -math.inf else best.best, trainer.global_step, max_iters)
