"""The named architectures of :mod:`cracksam.models.segmodels` (students and baselines).

Builders import their library lazily so that ``cracksam`` starts fast and a missing optional
library only matters for the model that needs it.  ``pretrained`` asks for ImageNet encoder
weights (a hub download, only where the user is online); otherwise weights are random.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cracksam.models.segmodels import ArchSpec, register_architecture


def _smp(arch: str, encoder: str, pretrained: bool, **kwargs) -> nn.Module:
    import segmentation_models_pytorch as smp

    return getattr(smp, arch)(encoder_name=encoder, encoder_weights="imagenet" if pretrained else None,
                              classes=2, **kwargs)


def _unet_mobilenetv3_small(pretrained: bool, image_size: int) -> nn.Module:
    # Narrow decoder: the default decoder (256..16 channels) costs 3x the encoder at 448 px on a
    # CPU; cracks are thin but simple, and full-resolution skip connections matter more than width.
    return _smp("Unet", "tu-mobilenetv3_small_100", pretrained, decoder_channels=(96, 48, 24, 16, 8))


register_architecture(ArchSpec(
    "unet_mobilenetv3_small", _unet_mobilenetv3_small,
    "U-Net, MobileNetV3-Small encoder, narrow decoder (CPU default model)", role="student",
    backbone="mobilenetv3_small_100",
))


# -- helpers ---------------------------------------------------------------------------------------


def _smp_timm(arch: str, encoder: str, pretrained: bool, **kwargs) -> nn.Module:
    """An smp model on a timm (``tu-``) encoder: those take ``encoder_weights=True`` for the
    encoder's default pretrained tag (ImageNet for the names used here)."""
    import segmentation_models_pytorch as smp

    return getattr(smp, arch)(encoder_name=encoder, encoder_weights=True if pretrained else None, classes=2,
                              **kwargs)


# mmseg's UPerHead uses 512 channels; with them smp's UPerNet on Swin-T/B has the parameter counts
# of mmseg's UPerNet-Swin (59 M / 120 M without the auxiliary FCN head, which is training-only).
_UPERNET_CHANNELS = 512


# -- students --------------------------------------------------------------------------------------


class HRNetFCN(nn.Module):
    """HRNetV2-W18 with mmseg's ``fcn_hr18`` head: the four branches (18/36/72/144 channels at
    strides 4/8/16/32) are resized to stride 4 and concatenated (270 channels), then one
    conv1x1(270->270)+BN+ReLU (mmseg: ``kernel_size=1, num_convs=1``) and a conv1x1 classifier.
    Logits are at stride 4 (:class:`SegModel` upsamples them)."""

    def __init__(self, pretrained: bool, name: str = "hrnet_w18") -> None:
        super().__init__()
        import timm

        # feature_location="" gives the raw branch outputs (not the classification "incre" heads);
        # index 0 is the stride-2 stem, which the head does not use.
        # Any: timm's API (feature_info here) is attributes that torch's Module typing hides.
        backbone: Any = timm.create_model(name, pretrained=pretrained, features_only=True,
                                          feature_location="", out_indices=(1, 2, 3, 4))
        self.backbone = backbone
        channels = sum(backbone.feature_info.channels())
        self.head = nn.Sequential(
            nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(x)
        size = feats[0].shape[-2:]
        feats = [feats[0]] + [F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats[1:]]
        return self.head(torch.cat(feats, dim=1))


def _hrnet_w18_fcn(pretrained: bool, image_size: int) -> nn.Module:
    return HRNetFCN(pretrained)


def _resnet50_fcn(pretrained: bool, image_size: int) -> nn.Module:
    from torchvision.models import ResNet50_Weights
    from torchvision.models.segmentation import fcn_resnet50

    # weights_backbone must be explicit: torchvision's default is the ImageNet download.
    return fcn_resnet50(weights=None, weights_backbone=ResNet50_Weights.DEFAULT if pretrained else None,
                        num_classes=2, aux_loss=False)


def _resnet50_deeplabv3plus(pretrained: bool, image_size: int) -> nn.Module:
    return _smp("DeepLabV3Plus", "resnet50", pretrained)


def _mobilenetv3_lraspp(pretrained: bool, image_size: int) -> nn.Module:
    from torchvision.models import MobileNet_V3_Large_Weights
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    return lraspp_mobilenet_v3_large(
        weights=None, weights_backbone=MobileNet_V3_Large_Weights.DEFAULT if pretrained else None, num_classes=2
    )


register_architecture(ArchSpec(
    "hrnet_w18_fcn", _hrnet_w18_fcn,
    "HRNetV2-W18 (timm hrnet_w18 branches) + mmseg fcn_hr18 head (resize-concat, 1x1 conv); "
    "9.6 M parameters; also a baseline in the paper's Table 7",
    role="student", multiple=32, paper_params_m=9.6, backbone="hrnet_w18",
))
register_architecture(ArchSpec(
    "resnet50_fcn", _resnet50_fcn, "FCN, ResNet-50 backbone (torchvision fcn_resnet50, no auxiliary head)",
    role="student", multiple=8, backbone="resnet50",
))
register_architecture(ArchSpec(
    "resnet50_deeplabv3plus", _resnet50_deeplabv3plus, "DeepLabV3+, ResNet-50 encoder (smp)",
    role="student", multiple=16, backbone="resnet50",
))
register_architecture(ArchSpec(
    "mobilenetv3_lraspp", _mobilenetv3_lraspp,
    "LR-ASPP, MobileNetV3-Large backbone (torchvision); also a baseline in the paper's Table 7",
    role="student", multiple=16, backbone="mobilenet_v3_large",
))


# -- the paper's baselines -------------------------------------------------------------------------


def _vgg16_unet(pretrained: bool, image_size: int) -> nn.Module:
    return _smp("Unet", "vgg16_bn", pretrained)


def _unet(pretrained: bool, image_size: int) -> nn.Module:
    return _smp("Unet", "resnet34", pretrained)


def _swin_upernet(variant: str):
    def build(pretrained: bool, image_size: int) -> nn.Module:
        # timm's Swin fixes its input size at construction (attention masks, relative position
        # tables resampled on load); windows are clamped/padded, so any multiple of 32 works.
        return _smp_timm("UPerNet", f"tu-swin_{variant}_patch4_window7_224", pretrained,
                         decoder_channels=_UPERNET_CHANNELS, img_size=image_size)

    return build


def _resnet101_deeplabv3plus(pretrained: bool, image_size: int) -> nn.Module:
    return _smp("DeepLabV3Plus", "resnet101", pretrained)


def _resnet101_pspnet(pretrained: bool, image_size: int) -> nn.Module:
    # The original PSPNet runs a dilated ResNet (output stride 8) and pools its last stage;
    # smp's default (encoder_depth=3) would pool the 512-channel stride-8 layer2 features instead.
    return _smp("PSPNet", "resnet101", pretrained, encoder_depth=5, output_stride=8, upsampling=8)


class ViTUPerNet(nn.Module):
    """UPerNet on a plain ViT-B/16 as in mmseg's BEiT/MAE segmentation configs: features of blocks
    4, 6, 8 and 12 (stride 16) are turned into a pyramid by a neck -- two 2x deconvolutions (1/4),
    one (1/8), identity (1/16), 2x max-pool (1/32) -- that feeds smp's UPerNet decoder."""

    def __init__(self, pretrained: bool, image_size: int) -> None:
        super().__init__()
        import timm
        from segmentation_models_pytorch.base import SegmentationHead
        from segmentation_models_pytorch.decoders.upernet.decoder import UPerNetDecoder

        # Any: timm's API (prune_intermediate_layers, embed_dim, forward_intermediates) is attributes
        # that torch's Module typing hides.
        vit: Any = timm.create_model("vit_base_patch16_224", pretrained=pretrained, img_size=image_size,
                                     num_classes=0)
        self.vit: Any = vit
        self.indices = [3, 5, 7, 11]
        vit.prune_intermediate_layers(self.indices, prune_norm=True, prune_head=True)  # unused: no grads
        dim = vit.embed_dim
        self.fpn1 = nn.Sequential(nn.ConvTranspose2d(dim, dim, 2, 2), nn.BatchNorm2d(dim), nn.GELU(),
                                  nn.ConvTranspose2d(dim, dim, 2, 2))
        self.fpn2 = nn.ConvTranspose2d(dim, dim, 2, 2)
        self.fpn3 = nn.Identity()
        self.fpn4 = nn.MaxPool2d(2, 2)
        self.decoder = UPerNetDecoder(encoder_channels=[3, 0, dim, dim, dim, dim], encoder_depth=5,
                                      decoder_channels=_UPERNET_CHANNELS)
        self.head = SegmentationHead(_UPERNET_CHANNELS, 2, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.vit.forward_intermediates(x, indices=self.indices, intermediates_only=True)
        pyramid = [neck(f) for neck, f in zip((self.fpn1, self.fpn2, self.fpn3, self.fpn4), feats, strict=True)]
        return self.head(self.decoder([x, x, *pyramid]))  # the decoder skips the first two (1/1, 1/2)


def _vit_b_upernet(pretrained: bool, image_size: int) -> nn.Module:
    return ViTUPerNet(pretrained, image_size)


def _segformer_mit_b5(pretrained: bool, image_size: int) -> nn.Module:
    return _smp("Segformer", "mit_b5", pretrained)


register_architecture(ArchSpec(
    "vgg16_unet", _vgg16_unet, "U-Net, VGG16-BN encoder (smp)", role="baseline", multiple=32, backbone="vgg16_bn",
))
register_architecture(ArchSpec(
    "unet", _unet,
    "U-Net (smp, ResNet-34 encoder): stands in for the original U-Net of Ronneberger et al.",
    role="baseline", multiple=32, backbone="resnet34",
))
register_architecture(ArchSpec(
    "swin_t_upernet", _swin_upernet("tiny"),
    "UPerNet (smp, 512 channels), Swin-T encoder (timm swin_tiny_patch4_window7_224, built for the image size)",
    role="baseline", multiple=32, backbone="swin_tiny_patch4_window7_224",
))
register_architecture(ArchSpec(
    "swin_b_upernet", _swin_upernet("base"),
    "UPerNet (smp, 512 channels), Swin-B encoder (timm swin_base_patch4_window7_224, built for the image size)",
    role="baseline", multiple=32, backbone="swin_base_patch4_window7_224",
))
register_architecture(ArchSpec(
    "resnet101_deeplabv3plus", _resnet101_deeplabv3plus, "DeepLabV3+, ResNet-101 encoder (smp)",
    role="baseline", multiple=16, backbone="resnet101",
))
register_architecture(ArchSpec(
    "resnet101_pspnet", _resnet101_pspnet,
    "PSPNet, dilated ResNet-101 encoder (output stride 8, pyramid pooling on the last stage; smp)",
    role="baseline", multiple=8, backbone="resnet101",
))
register_architecture(ArchSpec(
    "vit_b_upernet", _vit_b_upernet,
    "UPerNet (smp decoder, 512 channels), ViT-B/16 encoder (timm) with a deconv/max-pool neck to "
    "1/4..1/32 as in mmseg's BEiT/MAE UPerNet (our construction: smp has no plain-ViT UPerNet)",
    role="baseline", multiple=32, backbone="vit_base_patch16_224",
))
register_architecture(ArchSpec(
    "segformer_mit_b5", _segformer_mit_b5, "SegFormer, MiT-B5 encoder (smp)", role="baseline", multiple=32,
    backbone="mit_b5",
))
