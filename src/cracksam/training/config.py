"""Training configuration (dataclasses; YAML in and out, the resolved copy saved with each run)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cracksam.errors import ConfigError
from cracksam.models.cracksam import CrackSAMConfig
from cracksam.models.segmodels import SegModelConfig
from cracksam.training.encoder_delta import EncoderDeltaConfig
from cracksam.training.qat import CONVENTIONAL_ONLY, QATConfig


@dataclass
class DataConfig:
    """Datasets: folders with ``images/`` and ``masks/``; several are combined.

    ``val`` defaults to the ``val`` split of the training folders (splits are made by source
    photo where the folder says which tile came from which photo; see :mod:`cracksam.data.splits`).
    """

    train: list[str] = field(default_factory=list)
    val: list[str] | None = None
    ratios: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15],
                                metadata={"help": "train / val / test shares of each folder's split"})
    split_seed: int = field(default=0, metadata={"help": "seed of the split (evaluate uses the same)"})
    split_source: Literal["groups", "source"] = field(
        default="groups", metadata={"help": "what keeps tiles of one photo in one split"})
    augment: bool = True
    # Train on random crop x crop windows of the S x S input: same scale as inference, a quarter of
    # the compute per sample at half the side, which is what makes CPU training of a student feasible.
    crop: int | None = None
    num_workers: int = 2
    # "resize": the paper's resize-to-S pipeline (CrackSAM's default, keeps Table 7 reproducible);
    # "native": random scale of the original photo, then a crop (cracks keep their pixel width;
    # see cracksam.data.native); None: native for conventional networks, resize for CrackSAM.
    pipeline: Literal["resize", "native"] | None = None
    scale_range: list[float] = field(default_factory=lambda: [0.5, 2.0],
                                     metadata={"help": "native: [low, high] of the log-uniform scale"})
    crack_centred: float = field(default=0.5, metadata={"help": "native: share of crops centred on a crack pixel"})
    photometric: float = field(default=1.0, metadata={"help": "native: strength of the photometric jitter (0 = off)"})
    degrade: float = field(default=0.0, metadata={
        "help": "native: probability of a strong blur, resolution loss or darkening "
                "(0 = off; overlaps evaluate's dim/blurry)"})
    # How an epoch draws from several datasets: size (flat shuffle), sqrt, equal, or {name: weight}.
    weighting: str | dict[str, float] = field(
        default="size", metadata={"help": "how an epoch draws from several sets: size, sqrt, equal or {name: weight}"})
    samples_per_epoch: int | None = field(
        default=None, metadata={"help": "with weighting != size; default: the number of training samples"})
    # None: masks must have two levels; a fraction in (0, 1): crack above that share of full scale
    # (JPEG or anti-aliased masks, common in public crack sets).
    mask_threshold: float | None = None


@dataclass
class OptimConfig:
    lr: float = 4e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999], metadata={"help": "AdamW betas"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup_iters: int = 300
    poly_power: float = 6.0
    encoder_lr_scale: float = field(default=1.0, metadata={
        "help": "learning rate of a pretrained network's encoder as a fraction of lr (1 = same; 0 = frozen)"})


@dataclass
class LossConfig:
    ce_weight: float = field(default=0.2, metadata={"help": "share of cross-entropy in CE + Dice (the rest: Dice)"})
    dice: Literal["crack", "mean"] = field(
        default="crack", metadata={"help": "Dice of the crack class, or the mean over both classes"})
    # Weight of the skeleton-recall term (Kirchhoff et al., ECCV 2024) added to CE + Dice; 0 = off
    # (the paper's loss). Its skeleton targets are dilated ``skeleton_dilate`` times.
    skeleton_recall: float = field(default=0.0, metadata={"help": "weight of the skeleton-recall term; 0 = off"})
    skeleton_dilate: int = field(default=1, metadata={"help": "dilations of the skeleton-recall targets"})
    cldice: float = field(default=0.0, metadata={"help": "weight of a soft-clDice term (Shit et al. 2021); 0 = off"})


@dataclass
class DistillConfig:
    """Channel-wise knowledge distillation from a teacher (paper Appendix B: T = 3, λ_s = 5).

    ``teacher``: a checkpoint folder (CrackSAM or any registry model), an ``.onnx`` file or an
    OpenVINO ``.xml``; its logits on the training images are computed once into ``cache_dir``
    (default ``<out_dir>/teacher_cache``).
    """

    teacher: str = ""
    teacher_base: str | None = None  # SAM base checkpoint of a delta teacher
    allow_random_base: bool = False
    temperature: float = 3.0
    weight: float = 5.0
    cache_dir: str | None = None
    batch_size: int = field(default=4, metadata={"help": "images per teacher forward pass while filling the cache"})

    def __post_init__(self) -> None:
        if not self.teacher:
            raise ConfigError("distill.teacher: give the teacher model (checkpoint folder, .onnx or .xml)")
        if not self.temperature > 0:
            raise ConfigError(f"distill.temperature must be > 0, got {self.temperature}")
        if self.weight < 0:
            raise ConfigError(f"distill.weight must be >= 0, got {self.weight}")
        if self.batch_size < 1:
            raise ConfigError(f"distill.batch_size must be >= 1, got {self.batch_size}")


@dataclass
class TrainConfig:
    model: CrackSAMConfig = field(default_factory=CrackSAMConfig)
    # A conventional network from the registry (student or baseline) trained whole instead of
    # CrackSAM; ``model`` is then unused.
    network: SegModelConfig | None = None
    distill: DistillConfig | None = None
    # Quantisation-aware training: INT8 fake quantisers in the network (cracksam.training.qat).
    qat: QATConfig | None = None
    # Frozen encoder + LoRA on its 1x1 convolutions (cracksam.training.encoder_delta); kind none: trained whole.
    encoder_delta: EncoderDeltaConfig = field(default_factory=EncoderDeltaConfig)
    # Official SAM checkpoint (path, or vit_b/vit_l/vit_h to download); None = random base,
    # only sensible for the tiny config and smoke tests.
    base_checkpoint: str | None = None
    # Fine-tune from one of our models ("default" = the bundled one, a checkpoint or run folder):
    # its architecture and weights are the starting point (see cracksam.training.init_from).
    init_from: str | None = None
    init_trust: bool = field(default=False, metadata={
        "help": "accept an init_from folder written before checksums were required (format 1), unverified"})
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    batch_size: int = 8
    epochs: int = 140
    max_iters: int | None = None  # optimiser steps; overrides epochs when set
    val_every: int = 1  # epochs between validations
    # Optimiser steps between validations instead (None: by epochs). The last step is always
    # validated, so a run shorter than one epoch still leaves a best/ model.
    val_every_n_steps: int | None = None
    checkpoint_every: int = 200  # optimiser steps between resumable checkpoints
    threshold: float = field(default=0.5, metadata={"help": "crack probability threshold of validation"})
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: Literal["32-true", "32", "16-mixed", "bf16-mixed", "bf16-true", "64-true"] = "32-true"
    accumulate: int = 1
    seed: int = 0
    out_dir: str = "runs/cracksam"
    progress: bool = True
    # Which validation score picks the best model: "iou" (pooled over every validation pixel, the
    # paper) or "iou_mean_sets" (mean of the per-dataset IoUs: small whole-photo sets count as
    # much as big tile sets).
    monitor: Literal["iou", "iou_mean_sets"] = field(
        default="iou", metadata={"help": "validation score that picks best/: pooled iou or iou_mean_sets"})

    @property
    def image_size(self) -> int:
        return self.network.image_size if self.network is not None else self.model.image_size

    @property
    def model_name(self) -> str:
        if self.network is not None:
            return self.network.arch
        return f"cracksam_{self.model.backbone}_{self.model.delta.kind.replace('+', '_')}"

    @property
    def quantization_aware(self) -> bool:
        return self.qat is not None and self.qat.enabled

    @property
    def native(self) -> bool:
        """Whether training uses the native-scale pipeline (default: conventional networks trained
        without a teacher)."""
        if self.data.pipeline is None:
            # Distillation keeps the resize pipeline: the teacher's logits are cached at S x S.
            return self.network is not None and self.distill is None
        return self.data.pipeline == "native"

    def __post_init__(self) -> None:
        d = self.data
        from cracksam.data.io import check_mask_threshold

        check_mask_threshold(d.mask_threshold, "data.mask_threshold (--mask-threshold)")
        if d.pipeline not in (None, "resize", "native"):
            raise ConfigError(f"data.pipeline must be resize or native, got {d.pipeline!r}")
        if len(d.scale_range) != 2 or not 0 < d.scale_range[0] <= d.scale_range[1]:
            raise ConfigError(f"data.scale_range must be [low, high] with 0 < low <= high, got {d.scale_range}")
        if not 0.0 <= d.crack_centred <= 1.0:
            raise ConfigError(f"data.crack_centred must be in [0, 1], got {d.crack_centred}")
        if d.photometric < 0:
            raise ConfigError(f"data.photometric must be >= 0, got {d.photometric}")
        if not 0.0 <= d.degrade <= 1.0:
            raise ConfigError(f"data.degrade must be in [0, 1], got {d.degrade}")
        if d.samples_per_epoch is not None and d.samples_per_epoch < 1:
            raise ConfigError(f"data.samples_per_epoch must be >= 1, got {d.samples_per_epoch}")
        if isinstance(d.weighting, str) and d.weighting not in ("size", "sqrt", "equal"):
            raise ConfigError(f"data.weighting must be size, sqrt, equal or a mapping, got {d.weighting!r}")
        if self.monitor not in ("iou", "iou_mean_sets"):
            raise ConfigError(f"monitor must be iou or iou_mean_sets, got {self.monitor!r}")
        for name in ("skeleton_recall", "cldice"):
            if getattr(self.loss, name) < 0:
                raise ConfigError(f"loss.{name} must be >= 0, got {getattr(self.loss, name)}")
        if self.loss.skeleton_dilate < 0:
            raise ConfigError(f"loss.skeleton_dilate must be >= 0, got {self.loss.skeleton_dilate}")
        if self.native and self.distill is not None:
            raise ConfigError("distillation uses the resize pipeline (teacher logits are cached at S x S); "
                              "set data.pipeline: resize")
        if self.native and self.data.crop is None:
            self.data.crop = 256
        if self.quantization_aware and self.network is None and not self.init_from:
            raise ConfigError(CONVENTIONAL_ONLY)
        if self.encoder_delta.enabled:
            if self.network is None and not self.init_from:
                raise ConfigError("encoder_delta is for conventional networks with an smp encoder (give --arch, e.g. "
                                  "unet_efficientnet_lite0); CrackSAM's own deltas are model.delta")
            if self.quantization_aware:
                raise ConfigError("encoder_delta and qat cannot be combined: train the LoRA model first, then "
                                  "fine-tune its best/ with --qat")
        if self.native and self.network is not None:
            from cracksam.models.segmodels import get_architecture

            multiple = get_architecture(self.network.arch).multiple
            crop = self.data.crop  # set just above when native
            if crop is None or crop < 1 or crop % multiple:
                raise ConfigError(f"data.crop must be a positive multiple of {multiple} for {self.network.arch}, "
                                  f"got {self.data.crop}")
        if not self.native and self.data.crop is not None and not 1 <= self.data.crop <= self.image_size:
            raise ConfigError(f"data.crop must be between 1 and the image size {self.image_size}, got {self.data.crop}")
        for name in ("batch_size", "epochs", "val_every", "checkpoint_every", "devices", "num_nodes", "accumulate"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.val_every_n_steps is not None and self.val_every_n_steps < 1:
            raise ConfigError(f"val_every_n_steps must be >= 1, got {self.val_every_n_steps}")
        if self.max_iters is not None and self.max_iters < 1:
            raise ConfigError(f"max_iters must be >= 1, got {self.max_iters}")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.precision not in ("32-true", "32", "16-mixed", "bf16-mixed", "bf16-true", "64-true"):
            raise ConfigError(f"precision {self.precision!r} not supported (32-true, 16-mixed, bf16-mixed)")
        if self.optim.lr <= 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.optim.lr}")
        if self.optim.warmup_iters < 0:
            raise ConfigError("optim.warmup_iters must be >= 0")
        if not 0.0 <= self.optim.encoder_lr_scale <= 1.0:
            raise ConfigError(f"optim.encoder_lr_scale must be between 0 and 1, got {self.optim.encoder_lr_scale}")
        if len(self.optim.betas) != 2:
            raise ConfigError(f"optim.betas needs two values, got {self.optim.betas}")
        if not 0.0 <= self.loss.ce_weight <= 1.0:
            raise ConfigError(f"loss.ce_weight must be in [0, 1], got {self.loss.ce_weight}")
