"""Lightning pieces: the training module and the best-model callback (data: :mod:`.datamodule`).

One module trains any registry model: CrackSAM (its delta, prompt encoder and mask decoder) or
a conventional network (whole), optionally distilled from a teacher's cached logits.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torchmetrics.classification import BinaryStatScores

from cracksam.errors import ConfigError
from cracksam.evaluation.metrics import metrics_from_counts
from cracksam.models.cracksam import CrackSAM
from cracksam.models.io import save_trained
from cracksam.models.run_checkpoint import MODEL_KEY, model_record
from cracksam.models.segmodels import SegModel
from cracksam.training.config import TrainConfig
from cracksam.training.encoder_delta import checkpoint_record, merge_encoder_delta, saved_record
from cracksam.training.losses import CrackLoss, channel_wise_distillation_loss
from cracksam.training.qat import agreement_loss, quantizers_off
from cracksam.training.schedule import lr_factor
from cracksam.training.val_metrics import SetStatScores


class SegmentationModule(L.LightningModule):
    """Trains what ``model.trainable_state_dict()`` names: CrackSAM's delta, prompt encoder and
    mask decoder, or a whole student/baseline.

    Lightning checkpoints hold only those weights (plus optimiser and loop state): the frozen
    encoder comes from the base checkpoint, so a resumable ViT-H checkpoint is ~100 MB, not 2.5 GB.

    With ``config.distill`` each batch carries the teacher's logits (``batch["teacher"]``) and the
    loss is ``L_hard + λ_s · L_cwd`` (paper Eq. B.3).
    """

    def __init__(self, model: CrackSAM | SegModel, config: TrainConfig, max_iters: int) -> None:
        super().__init__()
        self.model = model
        self.config = config
        self.max_iters = max_iters
        lc = config.loss
        self.loss_fn = CrackLoss(lc.ce_weight, lc.dice, skeleton_recall=lc.skeleton_recall, cldice=lc.cldice)
        # Frozen weights are absent from our checkpoints, so loading must not demand them.
        self.strict_loading = False
        self.val_counts = BinaryStatScores(validate_args=False)  # tp, fp, tn, fn, support; 0/1 labels in
        self.val_set_counts = SetStatScores()  # tp, fp, fn per dataset
        # Native-scale validation feeds whole images of any size: pad them to the network's stride.
        self._multiple = _stride_multiple(model)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    # -- training ---------------------------------------------------------------------------

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits = self.model(batch["image"])
        loss, ce, dice = self.loss_fn(logits, batch["mask"], batch.get("skeleton"))
        bs = batch["image"].shape[0]
        if self.loss_fn.last_terms:
            self.log_dict({f"train/{k}": v for k, v in self.loss_fn.last_terms.items()}, batch_size=bs)
        qat = self.config.qat
        if qat is not None and qat.enabled and qat.agreement > 0:
            with torch.no_grad(), quantizers_off(self.model):
                reference = self.model(batch["image"])
            agree = agreement_loss(logits, reference)
            self.log("train/agreement", agree.detach(), batch_size=bs)
            loss = loss + qat.agreement * agree
        kd = self.config.distill
        if kd is not None:
            soft = channel_wise_distillation_loss(logits, batch["teacher"], kd.temperature)
            self.log_dict({"train/hard": loss.detach(), "train/soft": soft.detach()}, batch_size=bs)
            loss = loss + kd.weight * soft
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {self.global_step}; lower the learning rate")
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        self.log_dict({"train/ce": ce, "train/dice": dice}, batch_size=bs)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], prog_bar=True, batch_size=bs)
        return loss

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        opt = self.config.optim
        betas = (opt.betas[0], opt.betas[1])
        optimizer = torch.optim.AdamW(self._param_groups(), lr=opt.lr, betas=betas, weight_decay=opt.weight_decay)
        # The schedule spans max_iters, the step count fit() computes (the Trainer needs it as
        # max_steps before it exists).  Not trainer.estimated_stepping_batches here: asked this early
        # it builds the train loader before a resumed run's loader state is restored, and the resumed
        # run would restart the epoch's data order.  on_train_start checks that the two agree.
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, opt.warmup_iters, self.max_iters, opt.poly_power)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _param_groups(self) -> list[dict]:
        """One group, or two where ``optim.encoder_lr_scale`` slows a pretrained encoder (an smp
        network's ``encoder``) down against the freshly initialised decoder."""
        opt = self.config.optim
        trainable = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        if opt.encoder_lr_scale == 1.0:
            return [{"params": [p for _, p in trainable]}]
        encoder = [p for n, p in trainable if n.startswith("net.encoder.")]
        if not encoder:
            raise ConfigError(f"optim.encoder_lr_scale {opt.encoder_lr_scale} needs a network with a pretrained "
                              "encoder (an smp U-Net such as unet_efficientnet_lite0); this model has none")
        rest = [p for n, p in trainable if not n.startswith("net.encoder.")]
        # LambdaLR multiplies each group's initial lr, so the ratio holds through warm-up and decay.
        return [{"params": rest}, {"params": encoder, "lr": opt.lr * opt.encoder_lr_scale}]

    def on_train_start(self) -> None:
        # The train loader exists by now (and a resumed run's position is restored), so asking
        # Lightning for its count of optimiser steps changes nothing.
        estimated = self.trainer.estimated_stepping_batches
        if estimated != self.max_iters:
            raise RuntimeError(f"the schedule spans {self.max_iters} steps but the trainer will take {estimated}")

    # -- validation: dataset-level scores of the crack class ----------------------------------

    def on_validation_epoch_start(self) -> None:
        self.val_counts.reset()
        datamodule = getattr(self.trainer, "datamodule", None)
        names = {s.dataset for s in getattr(datamodule, "val_samples", [])}
        # Rebuilt each validation: the datasets of this run's validation split, on every rank.
        self.val_set_counts = SetStatScores(names).to(self.device)

    def _val_logits(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        m = self._multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            # Reflect needs the pad smaller than the side; tiny tiles fall back to replicate.
            mode = "reflect" if ph < h and pw < w else "replicate"
            images = F.pad(images, (0, pw, 0, ph), mode=mode)
        return self.model(images)[..., :h, :w]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        prob = self._val_logits(batch["image"]).float().softmax(dim=1)[:, 1]
        # Thresholded here with >= (BinaryMetrics' rule); torchmetrics gets 0/1 labels.
        pred = (prob >= self.config.threshold).long()
        truth = batch["mask"].bool().long()
        self.val_counts.update(pred, truth)
        self.val_set_counts.update(pred, truth, batch["dataset"])

    def on_validation_epoch_end(self) -> None:
        # compute() sums the counts of every rank (torchmetrics' state synchronisation).
        tp, fp, _tn, fn, _support = self.val_counts.compute().tolist()
        scores = {k: float(v) for k, v in metrics_from_counts(tp, fp, fn).items()}
        self.log_dict({f"val/{k}": v for k, v in scores.items()}, prog_bar=False, sync_dist=False)
        set_ious = {n: float(metrics_from_counts(*c)["iou"]) for n, c in self.val_set_counts.compute().items()}
        if set_ious:
            self.log_dict({f"val/iou_{name}": v for name, v in set_ious.items()}, sync_dist=False)
            self.log("val/iou_mean_sets", sum(set_ious.values()) / len(set_ious), sync_dist=False)
        iou = scores["iou"]
        self.log("val_iou", iou, prog_bar=True, sync_dist=False)

    # -- checkpoints: trainable weights only ---------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        keep = {f"model.{k}" for k in self.model.trainable_state_dict()}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}
        # What rebuilds the model, so the checkpoint can also be used as a model (predict -m last.ckpt).
        # With an encoder delta, also the scaling that folds its LoRA factors (cracksam.models.lora_fold).
        record = model_record(self.model, self.config.base_checkpoint)
        checkpoint[MODEL_KEY] = {**record, **checkpoint_record(self.model)}


CrackSAMModule = SegmentationModule  # the name used before students existed


class BestDeltaCheckpoint(L.Callback):
    """Keeps the best model by validation IoU (``<run>/best``): CrackSAM's delta, or a whole
    student/baseline, in our checkpoint format."""

    def __init__(self, directory: Path, base: str | None, monitor: str = "val/iou",
                 score_start: bool = False) -> None:
        # "val/iou" (pooled) or "val/iou_mean_sets" (see TrainConfig.monitor).
        self.directory, self.base, self.monitor = Path(directory), base, monitor
        # Fine-tuning: the validation Lightning runs before the first step (its sanity check, made
        # to cover the whole validation set by fit) scores the start model, which then is best/
        # until a trained one beats it; a run whose steps only hurt ends with the model it began from.
        self.score_start = score_start
        self.start_score: float | None = None
        self.best: float = -math.inf
        self.best_step: int = -1
        # Step of the last validation seen (this process): fit() validates once more at the end
        # when training stopped after it, so a run ending between validations still has a best/.
        self.validated_step: int = -1

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        start = trainer.sanity_checking
        if start and not (self.score_start and trainer.global_step == 0):
            return
        metric = trainer.callback_metrics.get(self.monitor)
        if metric is None:
            return
        value = float(metric)
        if start:
            self._record_start(trainer, value)
        else:
            self.validated_step = trainer.global_step
        if value > self.best:
            self.best, self.best_step = value, trainer.global_step
            if trainer.is_global_zero:
                model = cast(SegmentationModule, pl_module).model  # the only module this callback is given
                save_trained(
                    merge_encoder_delta(model),  # an encoder delta's LoRA folded in: a plain model of its arch
                    self.directory,
                    base=self.base,
                    # start_model: best/ is still the model the run was started from.
                    extra={"val_iou": value, "step": trainer.global_step, "epoch": trainer.current_epoch,
                           **({"start_model": True} if start else {}), **saved_record(model)},
                )

    def _record_start(self, trainer: L.Trainer, value: float) -> None:
        """The start model's score: kept, printed, and logged at step 0 as ``val/start_*`` (Lightning
        sends nothing of its sanity check to the loggers, and writes the first real validation at
        step 0 too, so the names must differ)."""
        self.start_score = value
        if not trainer.is_global_zero:
            return
        scores = {f"val/start_{k[4:]}": float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        for logger in trainer.loggers:
            logger.log_metrics(scores, step=0)
        name = self.monitor.removeprefix("val/")
        print(f"start model (step 0, before any training step): validation {name} {value:.4f}; it stays best/ "
              "until a validation beats it", file=sys.stderr, flush=True)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step, "start_score": self.start_score}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = float(state_dict.get("best", -math.inf))
        self.best_step = int(state_dict.get("best_step", -1))
        start = state_dict.get("start_score")
        self.start_score = None if start is None else float(start)
        self._reconcile()

    def _reconcile(self) -> None:
        """On resume: best/ may have been written after the checkpoint (a kill between the two).
        The checkpoint then does not know it; adopt its score so the resumed run replaces it only
        by a better model, never by a worse one."""
        import json

        try:
            saved = json.loads((self.directory / "config.json").read_text())
            value, step = float(saved["val_iou"]), int(saved["step"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        if value > self.best:
            self.best, self.best_step = value, step


def _stride_multiple(model: torch.nn.Module) -> int:
    """Side multiple a conventional network needs (1 for CrackSAM, which is always fed S x S)."""
    config = getattr(model, "config", None)
    arch = getattr(config, "arch", None)
    if arch is None:
        return 1
    from cracksam.models.segmodels import get_architecture

    return get_architecture(arch).multiple


def steps_per_epoch(num_samples: int, config: TrainConfig) -> int:
    world = config.devices * config.num_nodes
    batches = math.ceil(num_samples / (config.batch_size * world))
    return max(1, math.ceil(batches / config.accumulate))
