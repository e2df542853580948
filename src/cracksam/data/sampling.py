"""Which training samples an epoch draws: per-dataset weights instead of one flat list.

Combined crack sets differ by an order of magnitude in size (cfd has ~80 training photos, gaps384
~1,200 tiles) and in what a sample is (a whole photo vs a small tile). A flat shuffle lets the big
tile sets dominate, so the model rarely sees whole-photo asphalt. ``sqrt`` (default) gives each
dataset a share proportional to the square root of its size: small sets are seen more often than
their size alone would give, big sets still count more.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from cracksam.data.folder import Sample
from cracksam.errors import ConfigError

__all__ = ["WEIGHTINGS", "EpochSampler", "ShardSampler", "dataset_shares", "draw_seed", "sample_weights",
           "weighted_sampler"]

WEIGHTINGS = ("size", "sqrt", "equal")


def dataset_shares(counts: Mapping[str, int], weighting: str | Mapping[str, float] = "sqrt") -> dict[str, float]:
    """Share of the draws each dataset gets (sums to 1).

    ``weighting``: ``size`` (proportional to its sample count, i.e. a flat shuffle), ``sqrt``
    (proportional to the square root of its count), ``equal``, or an explicit ``{name: weight}``
    (names missing from it get weight 0).
    """
    if isinstance(weighting, str):
        if weighting not in WEIGHTINGS:
            raise ConfigError(f"dataset weighting must be one of {', '.join(WEIGHTINGS)} or a mapping, "
                              f"got {weighting!r}")
        power = {"size": 1.0, "sqrt": 0.5, "equal": 0.0}[weighting]
        raw = {name: float(n) ** power for name, n in counts.items() if n > 0}
    else:
        unknown = sorted(set(weighting) - set(counts))
        if unknown:
            raise ConfigError(f"dataset weights name datasets not in the training data: {', '.join(unknown)}")
        if any(float(w) < 0 for w in weighting.values()):
            raise ConfigError("dataset weights must be >= 0")
        raw = {name: float(weighting.get(name, 0.0)) for name, n in counts.items() if n > 0}
    total = sum(raw.values())
    if total <= 0:
        raise ConfigError("dataset weights give every dataset weight 0")
    return {name: w / total for name, w in raw.items()}


def sample_weights(samples: Sequence[Sample], weighting: str | Mapping[str, float] = "sqrt") -> np.ndarray:
    """Per-sample draw probability (float64, sums to 1): the dataset's share split evenly among its samples."""
    counts = Counter(s.dataset for s in samples)
    shares = dataset_shares(counts, weighting)
    return np.array([shares.get(s.dataset, 0.0) / counts[s.dataset] for s in samples], dtype=np.float64)


def weighted_sampler(samples: Sequence[Sample], weighting: str | Mapping[str, float] = "sqrt",
                     num_samples: int | None = None, seed: int = 0) -> WeightedRandomSampler:
    """Sampler drawing ``num_samples`` (default ``len(samples)``) indices with replacement."""
    weights = sample_weights(samples, weighting).tolist()
    generator = torch.Generator().manual_seed(int(seed))
    return WeightedRandomSampler(weights, num_samples or len(samples), replacement=True, generator=generator)


def draw_seed(seed: int, epoch: int, position: int) -> int:
    """Augmentation seed of one draw: a function of the run seed, the epoch and the draw's position
    in the epoch only, so it does not depend on which worker (or rank) loads the sample, and a
    resumed run draws exactly what the uninterrupted one would have."""
    return _mix(seed, epoch, position)


def _mix(*values: int) -> int:
    # SeedSequence wants non-negative entries; a negative --seed is folded into 64 bits.
    return int(np.random.SeedSequence([int(v) & 0xFFFFFFFFFFFFFFFF for v in values]).generate_state(1)[0])


class EpochSampler(torch.utils.data.Sampler):
    """Training order as a pure function of ``(seed, epoch)``, resumable mid-epoch, shared between
    ranks without a DistributedSampler wrapper.

    Each epoch is a permutation of the samples (or, with ``weights``, ``num_samples`` draws with
    replacement), generated from ``(seed, epoch)``; rank ``r`` of ``world`` takes positions
    ``r, r + world, ...`` (padded by wrapping, as DistributedSampler does). It yields
    ``(index, augmentation_seed)`` pairs (see :func:`draw_seed`), which
    :class:`~cracksam.data.dataset.CrackDataset` understands.

    ``start_batch`` skips the first batches of the epoch once (a resumed run); Lightning sets the
    epoch through :meth:`set_epoch` and restores the position through the loader's ``state_dict``.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int = 0, *,
                 weights: Sequence[float] | np.ndarray | None = None, num_samples: int | None = None,
                 rank: int = 0, world: int = 1) -> None:
        if num_items < 1:
            raise ConfigError("no training samples")
        self.num_items, self.batch_size, self.seed = int(num_items), int(batch_size), int(seed)
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        self.num_samples = int(num_samples or num_items)
        self.rank, self.world = int(rank), int(world)
        self.epoch = 0
        self.start_batch = 0

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.world)

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(len(self) / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def resume_at(self, epoch: int, batches_done: int) -> None:
        """Continue ``epoch`` after its first ``batches_done`` batches (the next epoch when done)."""
        if batches_done >= self.batches_per_epoch:
            epoch, batches_done = epoch + 1, 0
        self.epoch, self.start_batch = int(epoch), int(batches_done)

    def epoch_order(self, epoch: int) -> list[int]:
        """Every rank's draws of ``epoch``, in order (before splitting between ranks)."""
        generator = torch.Generator().manual_seed(_mix(self.seed, epoch))  # not a draw_seed: 2 entries
        if self.weights is None:
            order = torch.randperm(self.num_items, generator=generator).tolist()
        else:
            order = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=generator).tolist()
        total = len(self) * self.world
        return (order * math.ceil(total / len(order)))[:total]

    def __iter__(self):
        order = self.epoch_order(self.epoch)
        positions = range(self.rank, len(order), self.world)
        skip, self.start_batch = self.start_batch * self.batch_size, 0  # the skip applies once
        # A list, not a generator: Lightning may set the next epoch before the first draw.
        return iter([(order[p], draw_seed(self.seed, self.epoch, p)) for p in list(positions)[skip:]])


class ShardSampler(torch.utils.data.Sampler):
    """Rank ``r`` of ``world`` takes samples ``r, r + world, ...``, without the padding of a
    DistributedSampler: each validation sample is counted exactly once over all ranks."""

    def __init__(self, num_items: int, rank: int = 0, world: int = 1) -> None:
        self.indices = list(range(rank, num_items, world))

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self):
        return iter(self.indices)
