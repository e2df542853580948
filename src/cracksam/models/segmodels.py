"""Conventional segmentation networks (distillation students and the paper's baselines) behind
the same interface as CrackSAM.

Every model here is a :class:`SegModel`: input RGB float (B, 3, S, S) in 0..255, output logits
(B, 2, S, S) (background, crack) at input size, a ``config`` with ``image_size``.  So losses,
metrics, the trainer, the evaluator, the exporter and the predictor need no special case.

The networks themselves come from ``segmentation_models_pytorch``, ``timm`` and ``torchvision``;
this module only wraps them (ImageNet normalisation inside the model, a dict output unwrapped,
logits resized to the input when a head predicts at a lower resolution).  Architectures are added
with :func:`register_architecture`, which enters them in the one model registry
(:mod:`cracksam.models.registry`); :mod:`cracksam.models.zoo` and :mod:`~cracksam.models.zoo_thin`
register the named ones, and :mod:`cracksam.models` imports both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cracksam.errors import ConfigError
from cracksam.inference_modes import check_mode, check_scale
from cracksam.models import registry

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


@dataclass(frozen=True)
class ArchSpec:
    """How to build one named architecture.

    ``build(pretrained)`` returns a network mapping ImageNet-normalised (B, 3, S, S) to
    2-channel logits (any spatial size; a dict with ``"out"`` is accepted).  ``multiple`` is the
    factor the input side must be a multiple of (the network's stride).  ``role`` is ``student`` or
    ``baseline`` (a model may be both; it is listed under its first role).  ``dynamic``: the network
    runs at any input size that is a multiple of ``multiple`` (fully convolutional), so images can be
    segmented at their native resolution; networks whose patch embedding is built for one size
    (timm ViT / Swin with ``strict_img_size``) are detected as fixed-size by :class:`SegModel`.
    ``backbone``: the encoder's name, registry metadata.
    """

    name: str
    build: Callable[[bool, int], nn.Module]
    description: str
    role: str = "student"
    multiple: int = 32
    dynamic: bool = True
    paper_params_m: float | None = None  # parameter count the paper reports, where it gives one
    backbone: str = ""
    # How the network wants its 0..255 RGB input scaled (ImageNet statistics unless its pretrained
    # weights were trained otherwise): part of the model, so users always pass 0..255.
    input_mean: tuple[float, float, float] = IMAGENET_MEAN
    input_std: tuple[float, float, float] = IMAGENET_STD
    # ``build(True, ...)`` loads ImageNet weights from an installed package (no hub download).
    # Networks without such weights refuse ``pretrained=True`` (this project never downloads).
    offline_weights: bool = False


def _entry(spec: ArchSpec) -> registry.ModelEntry:
    def build(device: Any = None, **overrides: Any) -> SegModel:
        known = {f.name for f in dataclasses.fields(SegModelConfig)} - {"arch"}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"{spec.name} has no option {unknown[0]!r} (options: {', '.join(sorted(known))})")
        return build_segmodel(SegModelConfig(arch=spec.name, **overrides), device=device)

    return registry.ModelEntry(
        name=spec.name, build=build, family="segmodel", role=spec.role, backbone=spec.backbone,
        description=spec.description, params_m=spec.paper_params_m,
        default_image_size=SegModelConfig.image_size, default_inference_mode=SegModelConfig.inference_mode,
        input_multiple=spec.multiple, spec=spec,
    )


class _ArchitectureView(MutableMapping[str, ArchSpec]):
    """The conventional networks of the registry by name, as the dict this module once kept (tests
    register, replace and remove throw-away architectures through it)."""

    def __getitem__(self, name: str) -> ArchSpec:
        entry = registry._REGISTRY.get(name)
        if entry is None or entry.family != "segmodel":
            raise KeyError(name)
        return entry.spec

    def __setitem__(self, name: str, spec: ArchSpec) -> None:
        registry.register_model(_entry(dataclasses.replace(spec, name=name)), replace=True)

    def __delitem__(self, name: str) -> None:
        self[name]  # KeyError for a name that is not an architecture
        registry.unregister_model(name)

    def __iter__(self) -> Iterator[str]:
        return iter(registry.list_models(family="segmodel"))

    def __len__(self) -> int:
        return len(registry.list_models(family="segmodel"))


_ARCHS = _ArchitectureView()


def register_architecture(spec: ArchSpec) -> ArchSpec:
    registry.register_model(_entry(spec))
    return spec


def get_architecture(name: str) -> ArchSpec:
    try:
        return _ARCHS[name]
    except KeyError:
        known = ", ".join(sorted(_ARCHS))
        raise ConfigError(f"unknown architecture {name!r}; known: {known}") from None


def list_architectures(role: str | None = None) -> list[str]:
    return registry.list_models(family="segmodel", role=role)


@dataclass
class SegModelConfig:
    """What rebuilds a :class:`SegModel` (its weights are stored separately).

    ``pretrained``: the encoder started from ImageNet weights, read from an installed package
    (:mod:`cracksam.models.lite_weights`); ``init_weights`` records which (package, version, file,
    sha256), so a trained model says where its initial weights came from.  Loading a trained model
    never reads them again: its own weights replace them.

    ``inference_mode`` / ``inference_scale``: how ``cracksam predict``, ``evaluate``, ``serve``
    and ``stream`` run this model unless told otherwise (see :mod:`cracksam.inference_modes`):
    ``native`` at scale 1 by default, since these networks are fully convolutional.  Checkpoints
    written before these fields existed load with the defaults.
    """

    arch: str = "unet_mobilenetv3_small"
    image_size: int = 448
    pretrained: bool = False
    init_weights: dict[str, str] | None = None
    class_names: list[str] = field(default_factory=lambda: ["background", "crack"])
    inference_mode: str = "native"
    inference_scale: float = 1.0

    def __post_init__(self) -> None:
        spec = get_architecture(self.arch)
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or self.image_size < 1:
            raise ConfigError(f"image_size must be a positive integer, got {self.image_size!r}")
        if self.image_size % spec.multiple:
            raise ConfigError(f"{self.arch} needs an image size that is a multiple of {spec.multiple}, "
                              f"got {self.image_size}")
        if len(self.class_names) != 2:
            raise ConfigError(f"models predict 2 classes (background, crack); got {self.class_names}")
        check_mode(self.inference_mode, "inference_mode")
        self.inference_scale = check_scale(self.inference_scale, "inference_scale")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


class SegModel(nn.Module):
    """A conventional segmentation network with CrackSAM's interface.

    Input: (B, 3, S, S) float RGB in 0..255.  Output: logits (B, 2, S, S).  Where
    ``dynamic_input`` is true, (B, 3, H, W) works for any H, W that are multiples of
    ``input_multiple`` (the network's stride) and gives (B, 2, H, W).
    """

    # Registered as buffers in __init__; declared here for the type checker.
    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor
    # Set on loading (models.io): the input size the weights were trained at; absent on a new model.
    trained_image_size: int

    def __init__(self, config: SegModelConfig, load_pretrained: bool = True) -> None:
        super().__init__()
        self.config = config
        spec = get_architecture(config.arch)
        pretrained = config.pretrained and load_pretrained
        if pretrained and not spec.offline_weights:
            offline = ", ".join(n for n in list_architectures() if get_architecture(n).offline_weights)
            raise ConfigError(f"{config.arch} has no ImageNet weights that can be installed offline (this project "
                              f"never downloads from a hub); train it with --random-init, or pick one of: {offline}")
        self.net = spec.build(pretrained, config.image_size)
        if pretrained:
            # The builder says which package the weights came from (models.lite_weights).
            config.init_weights = getattr(self.net, "init_weights", None)
        self.input_multiple: int = spec.multiple
        # timm's ViT / Swin patch embeddings assert the size they were built for unless told otherwise.
        fixed = any(getattr(m, "strict_img_size", False) is True for m in self.net.modules())
        self.dynamic_input: bool = spec.dynamic and not fixed
        self.register_buffer("pixel_mean", torch.tensor(spec.input_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(spec.input_std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        out = self.net((images - self.pixel_mean) / self.pixel_std)
        if isinstance(out, dict):  # torchvision segmentation models
            out = out["out"]
        if out.shape[1] != 2:
            raise RuntimeError(f"{self.config.arch} returned {out.shape[1]} channels, expected 2")
        if out.shape[-2:] != images.shape[-2:]:
            out = F.interpolate(out, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return out

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Everything: a student is trained whole (batch-norm statistics included)."""
        return {k: v.detach() for k, v in self.state_dict().items()}

    def merge(self) -> SegModel:  # same interface as CrackSAM; nothing to merge
        return self


def build_segmodel(config: SegModelConfig, device: str | torch.device | None = None,
                   load_pretrained: bool = True) -> SegModel:
    """A :class:`SegModel`; ``load_pretrained=False`` skips the ImageNet weights even where the
    config asks for them (a trained model's own weights are about to replace them)."""
    if device is None:
        return SegModel(config, load_pretrained)
    with torch.device(device):
        return SegModel(config, load_pretrained)
