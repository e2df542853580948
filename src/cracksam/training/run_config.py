"""The run's ``config.yaml``: the resolved config, with only the sections the run uses.

A conventional network (``network``) does not read CrackSAM's ``model`` section, absent optional
sections (``distill``, ``qat``, ``network``) are ``null``, and ``encoder_delta`` of kind ``none`` does
nothing; writing them would suggest settings that played no part in the run.  What is left out
reads back as its default (:func:`~cracksam.config.load_yaml`), which is what the run had in effect.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from cracksam.config import atomic_write_text, to_dict
from cracksam.training.config import TrainConfig


def used_sections(config: TrainConfig) -> dict[str, Any]:
    """``config`` as a plain mapping without the sections the run does not use."""
    data = to_dict(config)
    if config.network is not None:
        data.pop("model")
    if not config.quantization_aware:
        data.pop("qat")
    if not config.encoder_delta.enabled:
        data.pop("encoder_delta")
    for name in ("network", "distill"):
        if data[name] is None:
            data.pop(name)
    return data


def save_run_config(config: TrainConfig, path: str | os.PathLike[str]) -> None:
    atomic_write_text(path, yaml.safe_dump(used_sections(config), sort_keys=False))
