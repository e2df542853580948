"""A registry of named models; :func:`create` is the one entry point (like timm's ``create_model``).

* CrackSAM variants are named ``cracksam_<backbone>_<delta>`` (e.g. ``cracksam_vit_h_lora``);
  keyword arguments override fields of :class:`~cracksam.models.cracksam.CrackSAMConfig`.
* Conventional networks (students, baselines) carry their architecture name (e.g.
  ``hrnet_w18_fcn``, see :mod:`cracksam.models.zoo`); keyword arguments override fields of
  :class:`~cracksam.models.segmodels.SegModelConfig` (``image_size``, ``pretrained``).

Every model maps (B, 3, S, S) RGB in 0..255 to (B, 2, S, S) logits and has ``config.image_size``.
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
    from cracksam.models.segmodels import list_architectures

    return sorted(n for n in [*_REGISTRY, *list_architectures()] if pattern in n)


def _segmodel_factory(name: str, device: Any = None, **overrides: Any) -> nn.Module:
    import dataclasses

    from cracksam.models.segmodels import SegModelConfig, build_segmodel

    known = {f.name for f in dataclasses.fields(SegModelConfig)} - {"arch"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"{name} has no option {unknown[0]!r} (options: {', '.join(sorted(known))})")
    return build_segmodel(SegModelConfig(arch=name, **overrides), device=device)


def create(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model (random weights, or ImageNet encoder weights with
    ``pretrained=True`` for conventional networks; load our checkpoints with ``load_model``)."""
    if name in _REGISTRY:
        return _REGISTRY[name](**kwargs)
    from cracksam.models.segmodels import list_architectures

    if name in list_architectures():
        return _segmodel_factory(name, **kwargs)
    raise ConfigError(f"unknown model {name!r}; known: {', '.join(list_models())}")


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
