"""Learning-rate schedule of the paper: linear warm-up, then polynomial decay."""

from __future__ import annotations


def lr_factor(iteration: int, warmup_iters: int, max_iters: int, power: float) -> float:
    """Multiplier of the base learning rate at ``iteration`` (0-based optimiser step).

    ``it < warmup``: ``it / warmup`` (rises linearly from 0);
    afterwards: ``(1 − (it − warmup) / max_iters) ** power``, clipped at 0.
    """
    if iteration < warmup_iters:
        return iteration / warmup_iters
    remaining = 1.0 - (iteration - warmup_iters) / max_iters
    return max(remaining, 0.0) ** power
