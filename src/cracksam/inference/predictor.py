"""One predictor over every runtime: same pre- and post-processing for PyTorch, ONNX Runtime and
OpenVINO, so their masks agree.

Three modes (:mod:`cracksam.inference_modes`; each model has its own default, see
:func:`inference_defaults`):

* ``resize`` (the paper, CrackSAM's default): the whole image is resized to the model's input
  S×S, segmented, and the logits are resized back to the original size (bilinear).
* ``tile``: a sliding S×S window at native resolution with overlap; overlapping logits are
  blended with a smooth (Hann) weight so seams do not show.  Thin cracks in large photos
  (a 2-px crack in a 4032-px phone photo is 0.2 px after shrinking to 448) survive.
* ``native`` (conventional networks' default): the image at its own resolution.  A backend that
  accepts dynamic shapes (a fully convolutional :class:`~cracksam.models.segmodels.SegModel` in
  PyTorch) gets the whole image in one forward pass, reflect-padded to a multiple of its stride,
  when both sides are at most ``window`` px, and ``window``-px Hann-blended windows otherwise;
  a fixed-shape backend (CrackSAM, ONNX / OpenVINO exports) gets S×S windows, as in ``tile``.

In ``tile`` and ``native`` mode the image is first resized by ``scale`` (area averaging when
shrinking, bilinear when enlarging) and the logits are resized back to the original size.

Windows (and images of one size) go to the backend ``batch_size`` at a time; with ``in_flight``
> 1 several such batches run at once (:mod:`cracksam.inference.inflight`: throughput mode), which
changes the speed, not the masks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from cracksam.data.transforms import build_transform
from cracksam.errors import ConfigError
from cracksam.inference.protocol import Announce, Backend, RuntimeChooser
from cracksam.inference.tiling import (
    _hann_weight,  # noqa: F401  (kept importable from here)
    aligned_stride,
    blend_windows,
    even_windows,
    pad_to_multiple,
    resize_logits,
    scale_image,
    tile_origins,
)
from cracksam.inference_modes import DEFAULT_WINDOW, DEFAULT_WINDOW_OVERLAP, check_mode, check_scale

if TYPE_CHECKING:
    from cracksam.inference.options import PredictOptions

Mode = Literal["resize", "tile", "native"]


@dataclass
class Prediction:
    """Per image, at original size (H, W)."""

    prob: np.ndarray  # float32, softmax probability of the crack class
    crack_logit: np.ndarray  # float32, raw logit of the crack channel (paper Fig. 15)

    def mask(self, threshold: float = 0.5) -> np.ndarray:
        return self.prob >= threshold


def _softmax_crack(logits: np.ndarray) -> np.ndarray:
    """(2, H, W) logits -> crack probability; the two-class softmax is a sigmoid of the difference."""
    return (1.0 / (1.0 + np.exp(np.clip(logits[0] - logits[1], -80.0, 80.0)))).astype(np.float32)


def inference_defaults(backend: Any) -> tuple[str, float]:
    """The mode and scale a model runs with unless told otherwise: a conventional network's config
    says (``inference_mode`` / ``inference_scale``, also read from an export's metadata); CrackSAM
    and models without a known config are resized, as in the paper."""
    config = getattr(backend, "model_config", None)
    if config is not None and hasattr(config, "inference_mode"):
        return str(config.inference_mode), float(config.inference_scale)
    return "resize", 1.0


class Predictor:
    """Segments RGB uint8 images (H, W, 3) of any size with any :class:`Backend`."""

    def __init__(
        self,
        backend: Backend,
        mode: str | None = None,
        tile_overlap: float = 0.25,
        batch_size: int = 4,
        threshold: float = 0.5,
        scale: float | None = None,
        window: int = DEFAULT_WINDOW,
        in_flight: int = 1,
        window_overlap: int | None = None,
    ) -> None:
        """``mode`` / ``scale``: None takes the model's own default (:func:`inference_defaults`).
        ``in_flight``: batches run at once (1: one after the other, the lowest latency per batch).
        ``window``: in native mode on a dynamic-shape backend, the largest side run in one forward
        pass and the window size above it (rounded down to the backend's stride multiple);
        ``window_overlap``: the least overlap of those windows, px (the context a window's edge lacks);
        None: :data:`DEFAULT_WINDOW_OVERLAP`, or a quarter of a smaller window."""
        default_mode, default_scale = inference_defaults(backend)
        self.mode: str = check_mode(default_mode if mode is None else mode)
        if self.mode == "resize":
            if scale is not None and check_scale(scale) != 1.0:
                raise ConfigError(f"scale {scale:g} has no effect in resize mode (the whole image is resized to "
                                  f"the model's {int(backend.image_size)}x{int(backend.image_size)}); "
                                  "use mode tile or native to scale images")
            self.scale = 1.0
        else:
            self.scale = check_scale(default_scale if scale is None else scale)
        if not 0.0 <= tile_overlap < 1.0:
            raise ConfigError(f"tile overlap must be in [0, 1), got {tile_overlap}")
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}")
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"threshold must be in (0, 1), got {threshold}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 32:
            raise ConfigError(f"window must be an integer >= 32 px, got {window!r}")
        from cracksam.inference.inflight import check_in_flight

        self.in_flight = check_in_flight(in_flight)
        self.backend = backend
        self.tile_overlap = tile_overlap
        self.batch_size = batch_size
        self.threshold = threshold
        self.image_size = int(backend.image_size)
        self.dynamic = bool(getattr(backend, "dynamic", False))
        self.multiple = max(1, int(getattr(backend, "multiple", 1))) if self.dynamic else 1
        self.window = max(self.multiple, window // self.multiple * self.multiple)
        if window_overlap is None:
            window_overlap = min(DEFAULT_WINDOW_OVERLAP, self.window // 4)
        if isinstance(window_overlap, bool) or not isinstance(window_overlap, int) or not (
                0 <= window_overlap < self.window // 2):
            raise ConfigError(f"window overlap must be an integer number of px in [0, {self.window // 2}) "
                              f"(under half the {self.window}-px window), got {window_overlap!r}")
        self.window_overlap = window_overlap
        self._resize = build_transform(self.image_size, augment=False)
        # What runs the model and why (set by from_path / with_info).
        self.runtime_info: dict[str, Any] = {"runtime": backend.name, "precision": backend.precision}
        self.model_path: Path | None = None  # the model's file or folder, once resolved (set by open_predictor)

    # -- construction from files -------------------------------------------------------------

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str] | None,
        base: str | None = None,
        device: str = "cpu",
        threads: int | None = None,
        allow_random_base: bool = False,
        mode: str | None = None,
        scale: float | None = None,
        trust: bool = False,
        runtime: str | None = None,
        **kwargs: Any,
    ) -> Predictor:
        """The Python API's way through :func:`open_predictor`: a checkpoint folder (CrackSAM delta +
        ``base``, a full export, or a student), an ``.onnx`` file or an OpenVINO ``.xml``; ``None`` or
        ``"default"`` is the default model bundled with the package, and a training run folder stands
        for its ``best/`` model.  ``mode`` / ``scale`` None: the model's own defaults (also for exports,
        from their metadata); ``trust``: accept our checkpoint folders without checksums (see
        :func:`cracksam.models.load_model`).  ``runtime``: None (the file's own: PyTorch for a checkpoint
        folder), ``torch``, ``onnxruntime`` or ``openvino``; ``auto`` and checkpoint folders run through
        ONNX Runtime / OpenVINO need deployment's runtime chooser: ``open_predictor(options,
        choose_runtime=cracksam.deployment.runtime_cache.select_backend)``.  What runs the model and why
        is in ``runtime_info``.  ``kwargs`` go to :class:`Predictor`."""
        from cracksam.inference.loading import EXPLICIT_RUNTIMES
        from cracksam.inference.options import PredictOptions

        if runtime is not None and runtime not in EXPLICIT_RUNTIMES:
            hint = " (auto needs deployment's runtime chooser: see open_predictor)" if runtime == "auto" else ""
            raise ConfigError(f"unknown runtime {runtime!r}; choose from {', '.join(EXPLICIT_RUNTIMES)}{hint}")
        options = PredictOptions(model=None if path is None else str(path), base=base, device=device,
                                 threads=threads, allow_random_base=allow_random_base, trust=trust,
                                 runtime=runtime or "auto", mode=mode, scale=scale, **kwargs)
        return open_predictor(options, cls=cls)

    @classmethod
    def with_info(cls, backend: Backend, info: dict[str, Any], **kwargs: Any) -> Predictor:
        """A predictor on ``backend`` whose ``runtime_info`` says what was chosen and why."""
        predictor = cls(backend, **kwargs)
        predictor.runtime_info = info
        return predictor

    # -- inference --------------------------------------------------------------------------

    def _run_batches(self, inputs: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
        """Uint8 (h, w, 3) network inputs of one size -> their (2, h, w) logits, ``batch_size`` at a time."""
        from cracksam.inference.inflight import run_many

        # Groups of in_flight batches: several requests at once, memory bounded for huge photos.
        group = self.batch_size * self.in_flight
        for g in range(0, len(inputs), group):
            chunks = [np.ascontiguousarray(np.stack(inputs[i : i + self.batch_size]).astype(np.float32)
                                           .transpose(0, 3, 1, 2))
                      for i in range(g, min(g + group, len(inputs)), self.batch_size)]
            if self.in_flight == 1:
                results = [self.backend.run(chunks[0])]
            else:
                results = run_many(self.backend, chunks, self.in_flight)
            for chunk, out in zip(chunks, results, strict=True):
                logits = np.asarray(out, dtype=np.float32)
                if logits.ndim != 4 or logits.shape[1] != 2 or logits.shape[2:] != chunk.shape[2:]:
                    raise ValueError(f"backend returned logits of shape {logits.shape} for input {chunk.shape}, "
                                     "expected (B, 2, H, W) at the input's size")
                yield from logits

    def _resize_logits(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        inputs = [self._resize(image=img)["image"] for img in images]
        # Bilinear on logits, as the model's own upsampling.
        return [resize_logits(lg, *img.shape[:2]) for img, lg in zip(images, self._run_batches(inputs), strict=True)]

    def _tile_logits(self, image: np.ndarray, dynamic: bool = False) -> np.ndarray:
        """Hann-blended overlapping windows over ``image``, cropped back to its size.  Fixed-shape
        backend: S×S windows ``tile_overlap`` apart, sides shorter than S padded (replicated
        border).  Dynamic backend: the fewest windows of at most ``window`` px per side that overlap
        by ``window_overlap`` px, on the stride grid of the image reflect-padded to the stride."""
        h, w = image.shape[:2]
        if dynamic:
            padded = pad_to_multiple(image, self.multiple)
            rows = even_windows(padded.shape[0], self.window, self.window_overlap, self.multiple)
            cols = even_windows(padded.shape[1], self.window, self.window_overlap, self.multiple)
            return blend_windows(padded, (rows[0], cols[0]), None, self._run_batches,
                                 origins=(rows[1], cols[1]))[:, :h, :w]
        s = self.image_size
        ph, pw = max(s - h, 0), max(s - w, 0)
        padded = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge") if ph or pw else image
        stride = aligned_stride(s, self.tile_overlap)
        return blend_windows(padded, (s, s), (stride, stride), self._run_batches)[:, :h, :w]

    def _native_logits(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Dynamic-shape backend: whole images (up to ``window`` per side; those with the same padded
        size share forward passes) or, when larger, evenly spread windows (:meth:`_tile_logits`)."""
        m, out = self.multiple, [np.empty(0, np.float32)] * len(images)
        whole: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            h, w = img.shape[:2]
            if h <= self.window and w <= self.window:
                whole.setdefault((-(-h // m) * m, -(-w // m) * m), []).append(i)
            else:
                out[i] = self._tile_logits(img, dynamic=True)
        for indices in whole.values():
            inputs = [pad_to_multiple(images[i], m) for i in indices]
            for i, logits in zip(indices, self._run_batches(inputs), strict=True):
                h, w = images[i].shape[:2]
                out[i] = np.ascontiguousarray(logits[:, :h, :w])
        return out

    def logits(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """(2, H, W) float32 logits per image at its original size."""
        for img in images:
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or min(img.shape[:2]) < 1:
                raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {img.dtype} {img.shape}")
        if self.mode == "resize":
            return self._resize_logits(images)
        scaled = [scale_image(img, self.scale) for img in images]
        if self.mode == "native" and self.dynamic:
            out = self._native_logits(scaled)
        else:
            out = [self._tile_logits(img) for img in scaled]
        return [resize_logits(lg, *img.shape[:2]) for img, lg in zip(images, out, strict=True)]

    def predict(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        return [Prediction(_softmax_crack(lg), lg[1].astype(np.float32)) for lg in self.logits(images)]

    def predict_one(self, image: np.ndarray) -> Prediction:
        return self.predict([image])[0]

    def describe(self) -> dict[str, Any]:
        """A small model card for logs, reports and the HTTP service."""
        from cracksam.inference.backends import target_name

        card: dict[str, Any] = {
            "runtime": self.backend.name,
            "precision": self.backend.precision,
            # The same name `bench` and `export` use for it (onnx, openvino-fp16, torch, ...).
            "backend": target_name(self.backend.name, self.backend.precision),
            "image_size": self.image_size,
            "mode": self.mode,
            "scale": self.scale,
            "inference": self.inference_summary(),
            "threshold": self.threshold,
        }
        if self.mode != "resize":
            card["tile_overlap"] = self.tile_overlap
        if self.mode == "native":
            card["dynamic_shapes"] = self.dynamic
            card["window"] = self.window if self.dynamic else self.image_size
            if self.dynamic:
                card["window_overlap"] = self.window_overlap
        config = getattr(self.backend, "model_config", None)
        if config is not None and hasattr(config, "arch"):  # a student or baseline
            card.update(arch=config.arch, pretrained=config.pretrained, class_names=list(config.class_names))
        elif config is not None:
            card.update(
                backbone=config.backbone,
                delta=config.delta.describe(),
                pixel_norm=config.pixel_norm,
                class_names=list(config.class_names),
            )
        path = getattr(self.backend, "path", None)
        if path is not None:
            card["file"] = str(path)
        return card

    def inference_summary(self) -> str:
        """One line saying how images are run, e.g. ``native, scale 1: whole image (padded to a
        multiple of 32) up to 2048 px per side, above it the fewest windows ...``."""
        s = self.image_size
        if self.mode == "resize":
            return f"resize: whole image resized to {s}x{s}"
        head = f"{self.mode}, scale {self.scale:g}"
        if self.mode == "native" and self.dynamic:
            pad = f" (padded to a multiple of {self.multiple})" if self.multiple > 1 else ""
            return (f"{head}: whole image{pad} up to {self.window} px per side, above it the fewest windows "
                    f"of at most {self.window} px overlapping by {self.window_overlap} px")
        fixed = " (fixed-shape model)" if self.mode == "native" else ""
        return f"{head}: {s}x{s} windows{fixed}, overlap {self.tile_overlap:g}"


def open_predictor(options: PredictOptions, choose_runtime: RuntimeChooser | None = None,
                   announce: Announce | None = None, cls: type[Predictor] = Predictor) -> Predictor:
    """The one door to a predictor: ``predict``, ``evaluate``, ``serve``, ``stream``, the survey
    engines and :meth:`Predictor.from_path` open their models here.

    The model ``options.model`` names is resolved once (``default``, a training run folder, a
    ``.ckpt``; kept as ``model_path``) and loaded once, and ``choose_runtime`` -- deployment's
    runtime cache (:func:`cracksam.deployment.runtime_cache.select_backend`), passed in by the
    commands -- says what runs a checkpoint folder; without it PyTorch does
    (:func:`cracksam.inference.loading.open_model`).  ``announce`` is told when an export is built.
    What was chosen and why is in the predictor's ``runtime_info``."""
    from cracksam.inference.loading import open_model

    path, backend, info = open_model(options, choose_runtime, announce)
    predictor = cls.with_info(backend, info, **options.predictor_kwargs())
    predictor.model_path = path
    return predictor


__all__ = ["Mode", "Prediction", "Predictor", "inference_defaults", "open_predictor", "tile_origins"]
