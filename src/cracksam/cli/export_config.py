"""The config tree of ``cracksam export``: the model, the targets, the parity and calibration images.

Every option is a key here, reachable from ``--config``, ``CRACKSAM_EXPORT__<KEY>`` variables,
``--set`` and the short flags (:mod:`cracksam.cli.tree`).  The checks that need no file run once,
in ``__post_init__``, whichever way a value came; their messages name the flag.  Imported when
the command runs (the target names come from the runtimes' module, which loads numpy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cracksam.cli.options import DYNAMIC_HELP, RANDOM_BASE_HELP, TRUST_HELP
from cracksam.config import help_meta
from cracksam.errors import ConfigError
from cracksam.threads import check_threads


def check_targets(names: list[str]) -> None:
    """Known export/runtime target names (at least one)."""
    from cracksam.inference.backends import TARGETS

    bad = [t for t in names if t not in TARGETS]
    if bad or not names:
        raise ConfigError(f"unknown export target(s) {bad or ','.join(names)!r}; choose from {', '.join(TARGETS)}")


@dataclass(frozen=True)
class ExportConfig:
    """``cracksam export``: deployable files, each checked against PyTorch."""

    model: str = field(default="default", metadata=help_meta(
        "Checkpoint folder (delta or full) or training run folder (its best/); 'default': the bundled model."))
    out: str = field(default="export", metadata=help_meta("Output folder."))
    targets: list[str] = field(default_factory=lambda: ["onnx", "openvino-fp16"], metadata=help_meta(
        "onnx, onnx-fused, onnx-int8 (dynamic), onnx-int8-static (QDQ, needs calib), openvino-fp32, openvino-fp16, "
        "openvino-int8 (NNCF, needs calib), openvino-int8-qat (a model trained with --qat: its own quantisers)."))
    base: str | None = field(default=None, metadata=help_meta("SAM base checkpoint for a delta checkpoint."))
    allow_random_base: bool = field(default=False, metadata=help_meta(RANDOM_BASE_HELP))
    trust: bool = field(default=False, metadata=help_meta(TRUST_HELP))
    samples: list[str] = field(default_factory=list, metadata=help_meta(
        "Images for the parity report (files/folders); none: the calibration images, else synthetic ones."))
    calib: list[str] = field(default_factory=list, metadata=help_meta("Calibration images for INT8 (files/folders)."))
    calib_size: int = field(default=64, metadata=help_meta("At most this many calibration images."))
    int8_max_drop: float = field(default=0.02, metadata=help_meta(
        "openvino-int8: return the layers that move the mask most to float until its mask IoU against float on the "
        "calibration images is at least 1 minus this (NNCF accuracy control); 0: every layer INT8."))
    min_iou: float | None = field(default=None, metadata=help_meta(
        "Override the parity tolerance (None: 0.99 FP32/FP16, 0.97 INT8)."))
    attach: bool = field(default=False, metadata=help_meta(
        "Copy the openvino-int8 export, once it passed parity, into the model folder (int8/), where --runtime auto "
        "finds it."))
    opset: int = field(default=17, metadata=help_meta("ONNX opset (>= 17)."))
    threads: int | None = field(default=None, metadata=help_meta(
        "CPU threads for the parity runs (None: every core)."))
    dynamic_shape: bool = field(default=True, metadata=help_meta(DYNAMIC_HELP))

    def __post_init__(self) -> None:
        check_threads(self.threads)
        check_targets(self.targets)
        if self.opset < 17:
            raise ConfigError(f"--opset must be >= 17, got {self.opset}")
        if self.attach and "openvino-int8" not in self.targets:
            raise ConfigError("--attach copies the openvino-int8 export into the model folder: add openvino-int8 to "
                              "--targets")
        if not 0.0 <= self.int8_max_drop < 1.0:
            raise ConfigError(f"--int8-max-drop must be in [0, 1), got {self.int8_max_drop}")
        if self.min_iou is not None and not 0.0 <= self.min_iou <= 1.0:
            raise ConfigError(f"--min-iou must be in [0, 1], got {self.min_iou}")


__all__ = ["ExportConfig", "check_targets"]
