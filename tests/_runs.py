"""Reading a training run's checkpoint back, for the reproducibility and resume tests."""

from __future__ import annotations

from pathlib import Path

import torch

from cracksam.models.run_checkpoint import load_checkpoint_file


def last_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint_file(run / "checkpoints" / "last.ckpt")["state_dict"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
