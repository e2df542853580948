"""How a model is run on an image of any size: the inference modes and their validation.

* ``resize`` (the CrackSAM paper): the whole image is resized to the model's input S×S.
* ``tile``: sliding S×S windows at the image's own resolution, blended with a Hann weight.
* ``native``: the image at its own resolution (times ``scale``).  A network that accepts any
  input size (a fully convolutional :class:`~cracksam.models.segmodels.SegModel` in PyTorch) runs
  the whole image in one forward pass (padded to its stride) up to a window size, and in
  overlapping windows of that size above it; a fixed-shape network (CrackSAM, ONNX / OpenVINO
  exports) runs S×S windows, as ``tile``.

``scale`` resizes the image before ``tile`` or ``native`` inference (0.5: the network sees half
the resolution); the result is resized back to the original size.

Each model carries its own defaults: conventional networks ``native`` at scale 1
(:class:`~cracksam.models.segmodels.SegModelConfig`), CrackSAM ``resize`` (what it was trained
and evaluated with).  This module imports nothing heavy, so settings and configs can use it.
"""

from __future__ import annotations

import math
from typing import Any

MODES = ("resize", "tile", "native")
MAX_SCALE = 8.0  # far above any useful up-sampling; keeps a typo (--scale 50) from exhausting memory
DEFAULT_WINDOW = 2048  # largest side run in one forward pass in native mode (dynamic-shape models); a
# 1920x1080 frame then runs whole, 3.6x faster than in blended 1024-px windows (benchmarks/RESULTS.md)
DEFAULT_WINDOW_OVERLAP = 64  # least px between those windows: a 4032-px side then takes two 2048-px windows.
# More overlap did not bring the bundled model's windows closer to its whole-image pass (RESULTS.md,
# "Native windows"): what differs there is its squeeze-excitation's pooling over the whole input.

# Help of the --mode / --scale options of predict, evaluate, serve and stream.
MODE_HELP = ("resize (whole image to the model's S x S), tile (S x S windows at native resolution) or native "
             "(the image at its own resolution: in one pass, or in windows when large, for fully "
             "convolutional networks; S x S windows for fixed-shape ones). Default: the model's own "
             "(native for conventional networks, resize for CrackSAM).")
SCALE_HELP = ("Resize images by this factor before tile/native inference (0.5: half resolution). Default: the "
              "model's own (1 for conventional networks). Masks keep the input's size.")


def check_mode(mode: Any, what: str = "mode") -> str:
    """``mode`` if it is one of :data:`MODES`, else a :class:`ConfigError` naming ``what``."""
    from cracksam.errors import ConfigError

    if mode not in MODES:
        raise ConfigError(f"{what} must be resize, tile or native, got {mode!r}")
    return str(mode)


def check_scale(scale: Any, what: str = "scale") -> float:
    """``scale`` as a float if it is a number in (0, MAX_SCALE], else a :class:`ConfigError`."""
    from cracksam.errors import ConfigError

    ok = isinstance(scale, (int, float)) and not isinstance(scale, bool)
    if not ok or not math.isfinite(scale) or not 0.0 < scale <= MAX_SCALE:
        raise ConfigError(f"{what} must be a number in (0, {MAX_SCALE:g}] (1: native resolution), got {scale!r}")
    return float(scale)


def check_options(mode: str | None, scale: float | None, prefix: str = "--") -> None:
    """Validate optional ``mode`` / ``scale`` (None: the model's default) before a model is loaded,
    so a bad command line fails at once; ``prefix`` names them as flags (``--mode``)."""
    if mode is not None:
        check_mode(mode, f"{prefix}mode")
    if scale is not None:
        check_scale(scale, f"{prefix}scale")


__all__ = [
    "DEFAULT_WINDOW", "DEFAULT_WINDOW_OVERLAP",
    "MAX_SCALE", "MODES", "MODE_HELP", "SCALE_HELP", "check_mode", "check_options", "check_scale",
]
