"""Which training samples an epoch draws: per-dataset weights instead of one flat list.

Combined crack sets differ by an order of magnitude in size (cfd has ~80 training photos, gaps384
~1,200 tiles) and in what a sample is (a whole photo vs a small tile). A flat shuffle lets the big
tile sets dominate, so the model rarely sees whole-photo asphalt. ``sqrt`` (default) gives each
dataset a share proportional to the square root of its size: small sets are seen more often than
their size alone would give, big sets still count more.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from cracksam.data.folder import Sample
from cracksam.errors import ConfigError

__all__ = ["WEIGHTINGS", "dataset_shares", "sample_weights", "weighted_sampler"]

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
