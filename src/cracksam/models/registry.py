"""A registry of named model configurations; :func:`create` is the one entry point (like timm).

Names are ``cracksam_<backbone>_<delta>`` (e.g. ``cracksam_vit_h_lora``); keyword arguments
override fields of the registered :class:`~cracksam.models.cracksam.CrackSAMConfig`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from torch import nn

from cracksam.errors import ConfigError
from cracksam.models.backbones import BACKBONES
from cracksam.models.cracksam import CrackSAMConfig, build_cracksam
from cracksam.models.deltas import DELTA_KINDS, DeltaConfig

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str, factory: Callable[..., nn.Module]) -> None:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} registered twice")
    _REGISTRY[name] = factory


def list_models(pattern: str = "") -> list[str]:
    return sorted(n for n in _REGISTRY if pattern in n)


def create(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model with random weights (load weights separately)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(list_models())}") from None
    return factory(**kwargs)


def _cracksam_factory(backbone: str, kind: str) -> Callable[..., nn.Module]:
    def factory(device: Any = None, **overrides: Any) -> nn.Module:
        config = CrackSAMConfig(backbone=backbone, delta=DeltaConfig(kind=kind))  # type: ignore[arg-type]
        for key, value in overrides.items():
            if not hasattr(config, key):
                raise ConfigError(f"CrackSAM has no option {key!r}")
            setattr(config, key, copy.deepcopy(value))
        config.__post_init__()
        return build_cracksam(config, device=device)

    return factory


for _backbone in BACKBONES:
    for _kind in DELTA_KINDS:
        register_model(f"cracksam_{_backbone}_{_kind.replace('+', '_')}", _cracksam_factory(_backbone, _kind))
