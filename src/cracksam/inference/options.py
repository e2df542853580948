"""The options of every command that opens a predictor (``predict``, ``serve``, ``stream``, the
survey engines): which model, on which runtime and device, and how images are run through it.

One typed record instead of the same keyword list in each command; it is opened by the one door,
:func:`cracksam.inference.predictor.open_predictor` (``runtime="auto"`` asks the runtime chooser
deployment passes in, which may export the model).  Light on purpose: no torch, so command lines
can build it for free.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from cracksam.config import help_meta
from cracksam.errors import ConfigError
from cracksam.inference_modes import DEFAULT_WINDOW, DEFAULT_WINDOW_OVERLAP

# "auto" is chosen by deployment's runtime cache (handed to the door); the others name a runtime outright.
RUNTIMES = ("auto", "torch", "onnxruntime", "openvino")


@dataclass(frozen=True)
class PredictOptions:
    """How to open and run a model; the defaults are those of ``cracksam predict``."""

    model: str | None = field(default=None, metadata=help_meta(
        "Checkpoint folder, training run folder (its best/), .onnx file or OpenVINO .xml; "
        "None or 'default' is the bundled model."))
    base: str | None = field(default=None, metadata=help_meta(
        "SAM base checkpoint (path or vit_b/vit_l/vit_h) for a delta checkpoint."))
    device: str = field(default="cpu", metadata=help_meta("cpu, cuda or cuda:N."))
    threads: int | None = field(default=None, metadata=help_meta("CPU threads of the runtime (None: its default)."))
    allow_random_base: bool = field(default=False, metadata=help_meta(
        "Keep random SAM base weights of a delta checkpoint without its base (tiny models, tests)."))
    trust: bool = field(default=False, metadata=help_meta("Accept checkpoint folders without checksums."))
    runtime: str = field(default="auto", metadata=help_meta(
        "auto (the fastest installed runtime whose export passed its parity check), torch, onnxruntime "
        "or openvino."))
    mode: str | None = field(default=None, metadata=help_meta(
        "resize, tile or native; None: the model's own default."))
    scale: float | None = field(default=None, metadata=help_meta(
        "Image scale in tile / native mode; None: the model's own default."))
    window: int = field(default=DEFAULT_WINDOW, metadata=help_meta(
        "Native mode on a dynamic-shape model: the largest side run whole, and the window size above it."))
    window_overlap: int | None = field(default=None, metadata=help_meta(
        f"Native mode: the least overlap of those windows, px, spread evenly (None: {DEFAULT_WINDOW_OVERLAP}, "
        "or a quarter of a smaller window)."))
    tile_overlap: float = field(default=0.25, metadata=help_meta(
        "Tile mode: overlap of neighbouring windows, in [0, 1)."))
    batch_size: int = field(default=4, metadata=help_meta("Windows or images per forward pass."))
    threshold: float = field(default=0.5, metadata=help_meta("Crack probability threshold of the masks, in (0, 1)."))
    in_flight: int = field(default=1, metadata=help_meta("Batches run at once (1: lowest latency per batch)."))

    def __post_init__(self) -> None:
        # The rest is checked by the Predictor and the loaders, where the message can name the file.
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"unknown runtime {self.runtime!r}; choose from {', '.join(RUNTIMES)}")

    def predictor_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :class:`~cracksam.inference.predictor.Predictor` itself."""
        return {"mode": self.mode, "scale": self.scale, "window": self.window, "window_overlap": self.window_overlap,
                "tile_overlap": self.tile_overlap,
                "batch_size": self.batch_size, "threshold": self.threshold, "in_flight": self.in_flight}

    def replace(self, **changes: Any) -> PredictOptions:
        return dataclasses.replace(self, **changes)

    @staticmethod
    def help(name: str) -> str:
        """The help text of field ``name``."""
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(PredictOptions)}[name]


__all__ = ["RUNTIMES", "PredictOptions"]
