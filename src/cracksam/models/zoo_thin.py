"""Architectures that keep full-resolution detail, compared for thin cracks at native scale.

A 1-2 px crack survives a stride-2 stem only as a faint response, so these add either a
full-resolution path or a higher-resolution backbone. All are trained from random weights here
(no ImageNet download is possible); the literature (DeepCrack, nnU-Net on OpenCrack) shows cracks do
not need pretrained encoders.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cracksam.models.segmodels import ArchSpec, register_architecture


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FullResUnet(nn.Module):
    """An smp U-Net whose last decoder output (stride 1, no skip in smp) is joined with a small
    stride-1 convolutional path on the input before the classifier: the decoder knows *where* a
    crack is, the full-resolution path knows exactly which pixels are dark and thin."""

    # smp ships no type hints; typed as what is used (its ``encoder`` and ``decoder``) rather than
    # nn.Module, whose __getattr__ types every attribute as ``Tensor | Module``.
    unet: Any

    def __init__(self, unet: nn.Module, decoder_out: int, width: int = 16) -> None:
        super().__init__()
        # smp's own classifier is replaced by ``fuse``; dropped so no parameter goes untrained.
        unet.segmentation_head = nn.Identity()
        self.unet = unet
        self.stem = nn.Sequential(_conv_bn_relu(3, width), _conv_bn_relu(width, width))
        self.fuse = nn.Sequential(_conv_bn_relu(decoder_out + width, width), nn.Conv2d(width, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.unet.encoder(x)
        decoded = self.unet.decoder(features)
        return self.fuse(torch.cat([decoded, self.stem(x)], dim=1))


def _smp_unet(encoder: str, pretrained: bool, decoder_channels: tuple[int, ...]) -> nn.Module:
    import segmentation_models_pytorch as smp

    weights: object = None
    if pretrained:
        weights = True if encoder.startswith("tu-") else "imagenet"
    return smp.Unet(encoder_name=encoder, encoder_weights=weights, classes=2, decoder_channels=decoder_channels)


def _unet_mobilenetv3_small_fr(pretrained: bool, image_size: int) -> nn.Module:
    channels = (96, 48, 24, 16, 8)
    return FullResUnet(_smp_unet("tu-mobilenetv3_small_100", pretrained, channels), channels[-1])


def _unet_resnet18(pretrained: bool, image_size: int) -> nn.Module:
    return _smp_unet("resnet18", pretrained, (128, 64, 32, 16, 16))


def _unet_resnet34(pretrained: bool, image_size: int) -> nn.Module:
    return _smp_unet("resnet34", pretrained, (128, 64, 32, 16, 16))


def _unet_resnet18_fr(pretrained: bool, image_size: int) -> nn.Module:
    channels = (128, 64, 32, 16, 16)
    return FullResUnet(_smp_unet("resnet18", pretrained, channels), channels[-1])


def _hrnet_w18_small_fcn(pretrained: bool, image_size: int) -> nn.Module:
    from cracksam.models.zoo import HRNetFCN

    return HRNetFCN(pretrained, name="hrnet_w18_small_v2")


register_architecture(ArchSpec(
    "unet_mobilenetv3_small_fr", _unet_mobilenetv3_small_fr,
    "U-Net MobileNetV3-Small (narrow decoder) + a stride-1 full-resolution path before the classifier",
    role="student", backbone="mobilenetv3_small_100",
))
register_architecture(ArchSpec(
    "unet_resnet18", _unet_resnet18, "U-Net, ResNet-18 encoder, decoder 128..16 (smp)", role="student",
    backbone="resnet18",
))
register_architecture(ArchSpec(
    "unet_resnet34", _unet_resnet34, "U-Net, ResNet-34 encoder, decoder 128..16 (smp)", role="student",
    backbone="resnet34",
))
register_architecture(ArchSpec(
    "unet_resnet18_fr", _unet_resnet18_fr,
    "U-Net ResNet-18 (decoder 128..16) + a stride-1 full-resolution path before the classifier",
    role="student", backbone="resnet18",
))
register_architecture(ArchSpec(
    "hrnet_w18_small_fcn", _hrnet_w18_small_fcn,
    "HRNetV2-W18-Small-v2 (timm) + the fcn_hr18 head: high-resolution branches throughout", role="student",
    backbone="hrnet_w18_small_v2",
))
