"""The config tree of ``cracksam bench``: the models, the runtimes to time, and how they are timed.

Every option is a key here, reachable from ``--config``, ``CRACKSAM_BENCH__<KEY>`` variables,
``--set`` and the short flags (:mod:`cracksam.cli.tree`).  The checks that need no file run once,
in ``__post_init__``, whichever way a value came; their messages name the flag.  Imported when the
command runs (the target names come from the runtimes' module, which loads numpy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cracksam.cli.options import RANDOM_BASE_HELP, TRUST_HELP
from cracksam.config import help_meta
from cracksam.errors import ConfigError
from cracksam.threads import check_threads

TORCH_BACKENDS = ("torch", "torch-compile")
DEFAULT_BACKENDS = ("torch", "torch-compile", "onnx", "onnx-fused", "onnx-int8", "onnx-int8-static",
                    "openvino-fp32", "openvino-fp16", "openvino-int8", "openvino-int8-qat")


@dataclass(frozen=True)
class BenchConfig:
    """``cracksam bench``: every runtime of a model timed in one table."""

    model: list[str] = field(default_factory=list, metadata=help_meta(
        "Checkpoint folders, training run folders or .onnx/.xml files (none: the bundled model)."))
    backends: list[str] = field(default_factory=lambda: list(DEFAULT_BACKENDS), metadata=help_meta(
        "For checkpoint folders: torch, torch-compile and the export targets to build and time (onnx-int8-static "
        "and openvino-int8 need calib, openvino-int8-qat a model trained with --qat; without them they are skipped "
        "when the list is the default)."))
    batch: int = field(default=1, metadata=help_meta("Batch size."))
    threads: int | None = field(default=None, metadata=help_meta("CPU threads of every runtime (None: every core)."))
    iterations: int = field(default=10, metadata=help_meta(
        "Timed runs per backend (also the requests of the throughput run)."))
    warmup: int = field(default=2, metadata=help_meta("Untimed runs first."))
    in_flight: int = field(default=2, metadata=help_meta("Requests in flight in the throughput run (1: skip it)."))
    base: str | None = field(default=None, metadata=help_meta("SAM base checkpoint for a delta checkpoint."))
    allow_random_base: bool = field(default=False, metadata=help_meta(RANDOM_BASE_HELP))
    trust: bool = field(default=False, metadata=help_meta(TRUST_HELP))
    calib: list[str] = field(default_factory=list, metadata=help_meta("Calibration images for INT8."))
    samples: list[str] = field(default_factory=list, metadata=help_meta(
        "Images for the parity check of each export."))
    export_dir: str = field(default="bench-export", metadata=help_meta("Where exports of checkpoint folders go."))
    min_iou: float | None = field(default=None, metadata=help_meta(
        "Parity tolerance for exports (None: 0.99 FP32/FP16, 0.97 INT8); 0 times every export."))
    json: bool = field(default=False, metadata=help_meta(
        "Print the results as JSON to stdout (the table goes to stderr)."))
    out: str | None = field(default=None, metadata=help_meta("Also write the results as JSON to this file."))

    def __post_init__(self) -> None:
        from cracksam.inference.backends import TARGETS

        check_threads(self.threads)
        if self.batch < 1 or self.iterations < 1 or self.warmup < 0 or self.in_flight < 1:
            raise ConfigError("--batch, --iterations and --in-flight must be >= 1 and --warmup >= 0")
        unknown = [n for n in self.backends if n not in TORCH_BACKENDS and n not in TARGETS]
        if unknown or not self.backends:
            raise ConfigError(f"unknown backend(s) {unknown or ','.join(self.backends)!r}; choose from "
                              f"{', '.join((*TORCH_BACKENDS, *TARGETS))}")

    @property
    def default_backends(self) -> bool:
        """Whether the backends are the default list (then the INT8 ones without calib are skipped, not refused)."""
        return tuple(self.backends) == DEFAULT_BACKENDS


__all__ = ["DEFAULT_BACKENDS", "TORCH_BACKENDS", "BenchConfig"]
