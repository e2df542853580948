"""The data side of a run: datasets, a resumable training order and whole-set validation shards.

Training batches come from :class:`~cracksam.data.sampling.EpochSampler`: the order and every
draw's augmentation seed are functions of ``(seed, epoch, position)``, so a seed reproduces a run
and a resumed run continues the very same stream.  The loader implements Lightning's
``state_dict`` / ``load_state_dict`` (Lightning stores it in the checkpoint's loop state and restores
it before the first batch), holding the epoch and the number of its batches already trained.
Samplers are per rank (``use_distributed_sampler=False``): validation splits the samples between
ranks without DistributedSampler's padding, so each sample is counted once.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from cracksam.data import CrackDataset, Sample
from cracksam.data.native import NativeTransform
from cracksam.data.sampling import EpochSampler, ShardSampler, sample_weights
from cracksam.training.config import TrainConfig


class ResumableLoader(DataLoader):
    """A DataLoader whose position in the run Lightning saves and restores."""

    def __init__(self, *args: Any, progress: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.epoch_sampler: EpochSampler = kwargs["sampler"]
        self.progress = progress  # () -> (epoch, batches of it trained), read when a checkpoint is written

    def state_dict(self) -> dict[str, int]:
        epoch, batches = self.progress() if self.progress is not None else (self.epoch_sampler.epoch, 0)
        return {"epoch": int(epoch), "batches": int(batches)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch_sampler.resume_at(int(state["epoch"]), int(state["batches"]))


class CrackDataModule(L.LightningDataModule):
    def __init__(self, train: list[Sample], val: list[Sample], config: TrainConfig, teacher: Any = None) -> None:
        super().__init__()
        self.train_samples, self.val_samples, self.config = train, val, config
        self.teacher = teacher  # TeacherCache for distillation

    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def _loader(self, dataset: CrackDataset, sampler: Any, batch_size: int, cls: type = DataLoader,
                **kw: Any) -> DataLoader:
        workers = self.config.data.num_workers
        return cls(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            # Its own generator: creating a loader iterator must not draw from the global torch
            # random state (a resumed run creates iterators at other moments than the original).
            generator=torch.Generator().manual_seed(self.config.seed),
            **kw,
        )

    def _progress(self) -> tuple[int, int]:
        trainer = self.trainer
        assert trainer is not None  # only asked while fitting
        return trainer.current_epoch, trainer.fit_loop.epoch_loop.batch_progress.current.ready

    def train_dataloader(self) -> DataLoader:
        config, data = self.config, self.config.data
        skeleton = config.loss.skeleton_dilate if config.loss.skeleton_recall > 0 else None
        native = None
        if config.native:
            assert data.crop is not None  # TrainConfig.validate sets it for the native pipeline
            native = NativeTransform(crop=data.crop, scale_range=(data.scale_range[0], data.scale_range[1]),
                                     crack_centred=data.crack_centred, augment_geometry=data.augment,
                                     photometric=data.photometric if data.augment else 0.0,
                                     degrade=data.degrade if data.augment else 0.0, seed=config.seed)
        dataset = CrackDataset(self.train_samples, config.image_size, augment=data.augment, crop=data.crop,
                               teacher=self.teacher, native=native, skeleton=skeleton, seed=config.seed)
        weights = None
        if data.weighting != "size" or data.samples_per_epoch:
            weights = sample_weights(self.train_samples, data.weighting)
        rank, world = self._rank_world()
        sampler = EpochSampler(len(self.train_samples), config.batch_size, config.seed, weights=weights,
                               num_samples=data.samples_per_epoch, rank=rank, world=world)
        return self._loader(dataset, sampler, config.batch_size, ResumableLoader, progress=self._progress)

    def val_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        sampler = ShardSampler(len(self.val_samples), rank, world)
        if self.config.native:
            # Whole validation images at their own size, the way `predict` runs the model.
            return self._loader(CrackDataset(self.val_samples, native_eval=True), sampler, 1)
        return self._loader(CrackDataset(self.val_samples, self.config.image_size), sampler, self.config.batch_size)
