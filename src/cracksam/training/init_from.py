"""Fine-tuning one of our models (``init_from``): the bundled model, a checkpoint or a run folder.

The starting model decides the architecture: a student/baseline (e.g. the bundled U-Net) is
trained whole from its weights; a CrackSAM delta checkpoint continues training its delta, prompt
encoder and mask decoder on the SAM base it records (or ``--base``).  A CrackSAM *full* export has
its LoRA merged into the encoder, so there is no delta left to train; it is refused.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cracksam.errors import ConfigError
from cracksam.models.cracksam import CrackSAMConfig
from cracksam.models.segmodels import SegModelConfig
from cracksam.training.config import TrainConfig

# Fine-tuning defaults, used where the user set neither (flag, --set, variable or config file).
# The rate was chosen on a small set as a user would fine-tune (benchmarks/experiments/finetune_defaults.sh:
# the bundled model on 70 photos of a road set it never saw, 80 steps): 3e-5, 1e-4 and 3e-4 all ended
# below the start model on validation (0.480 / 0.502 / 0.516 vs 0.523); 1e-3 (half the rate the bundled
# model was trained at) was the only one to beat it (0.544).  The warm-up is short because Adam's first
# steps are full-size whatever the gradient (not varied).  The start model is scored first and kept as
# best/ (see BestDeltaCheckpoint), so a rate that does not suit a set costs nothing but the run.
# Rerun on the bundled model that replaced it (frozen ImageNet encoder + folded LoRA; results_e14_bundled.txt):
# 1e-3 is still the only rate above the start (best 0.527 vs 0.517); the lower ones fall further (0.390 at 3e-5).
FINETUNE_DEFAULTS = {"optim.lr": 1e-3, "optim.warmup_iters": 10}


def apply_finetune_defaults(config: TrainConfig, given_keys: list[str]) -> list[str]:
    """With ``init_from``, set :data:`FINETUNE_DEFAULTS` where no key of ``given_keys`` (dotted,
    as the user set them) sets them; returns ``key value`` for each one set."""
    if not config.init_from:
        return []
    applied = []
    for key, value in FINETUNE_DEFAULTS.items():
        # "optim" as a whole (--set optim={...}, a file's mapping) sets its keys too.
        if any(key == k or key.startswith(k + ".") for k in given_keys):
            continue
        section, name = key.split(".")
        setattr(getattr(config, section), name, value)
        applied.append(f"{key} {value:g}")
    return applied


def _meta(source: str, trust: bool = False) -> dict[str, Any]:
    from cracksam.models.io import read_checkpoint_config

    return read_checkpoint_config(source, trust=trust)


def apply_init_from(config: TrainConfig) -> None:
    """Set ``config``'s architecture (and SAM base) from ``config.init_from``; idempotent.

    A network ``image_size`` already set in ``config`` is kept (it only sets the training
    resolution; the weights do not depend on it)."""
    if not config.init_from:
        return
    meta = _meta(config.init_from, config.init_trust)
    saved = meta["model_config"]
    if isinstance(saved, SegModelConfig):
        net = config.network
        if net is not None and net.arch != saved.arch:
            raise ConfigError(f"--init-from {config.init_from} holds a {saved.arch} model but --arch is {net.arch}; "
                              "drop --arch (the architecture comes from --init-from)")
        # pretrained=False: the weights come from the model, no ImageNet download.
        config.network = dataclasses.replace(saved, pretrained=False,
                                             image_size=net.image_size if net is not None else saved.image_size)
        return
    if not isinstance(saved, CrackSAMConfig):  # pragma: no cover - read_checkpoint_config knows two kinds
        raise ConfigError(f"--init-from {config.init_from}: unknown model kind")
    if config.network is not None:
        raise ConfigError(f"--init-from {config.init_from} holds a CrackSAM model; drop --arch")
    if meta["kind"] != "delta":
        raise ConfigError(f"--init-from {config.init_from}: a full CrackSAM export (LoRA merged into the encoder) "
                          "cannot be fine-tuned; give the delta checkpoint folder it was exported from")
    config.model = saved
    if not config.base_checkpoint:
        config.base_checkpoint = meta.get("base_checkpoint")


def load_init_model(config: TrainConfig, allow_random_base: bool = False):
    """The model to train, with the weights of ``config.init_from`` (after :func:`apply_init_from`)."""
    from cracksam.models.io import load_model
    from cracksam.models.segmodels import build_segmodel

    assert config.init_from is not None  # callers check it
    source = load_model(config.init_from, base_checkpoint=config.base_checkpoint, allow_random_base=allow_random_base,
                        trust=config.init_trust)
    if config.network is not None:
        model = build_segmodel(config.network)
        model.load_state_dict(source.state_dict(), strict=True)
        return model
    return source.train()
