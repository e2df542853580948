"""One predictor over every runtime: same pre- and post-processing for PyTorch, ONNX Runtime and
OpenVINO, so their masks agree.

Two modes:

* ``resize`` (the paper): the whole image is resized to the model's input S×S, segmented, and the
  logits are resized back to the original size (bilinear).
* ``tile``: a sliding S×S window at native resolution with overlap; overlapping logits are
  blended with a smooth (Hann) weight so seams do not show.  Thin cracks in large photos
  (a 2-px crack in a 4032-px phone photo is 0.2 px after shrinking to 448) survive.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import numpy as np

from cracksam.data.transforms import build_transform
from cracksam.errors import ConfigError

Mode = Literal["resize", "tile"]


class Backend(Protocol):
    """A runtime: float32 (B, 3, S, S) RGB 0..255 -> float32 logits (B, 2, S, S)."""

    image_size: int
    name: str
    precision: str

    def run(self, x: np.ndarray) -> np.ndarray: ...


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


def _hann_weight(size: int) -> np.ndarray:
    """Smooth 2-D tile weight, highest in the centre, never zero (image borders stay covered)."""
    ramp = np.hanning(size + 2)[1:-1].astype(np.float32)
    w = np.outer(ramp, ramp)
    return np.maximum(w, 1e-3)


def tile_origins(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets along one axis so that tiles of ``tile`` px cover ``length`` px."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


class Predictor:
    """Segments RGB uint8 images (H, W, 3) of any size with any :class:`Backend`."""

    def __init__(
        self,
        backend: Backend,
        mode: Mode = "resize",
        tile_overlap: float = 0.25,
        batch_size: int = 4,
        threshold: float = 0.5,
    ) -> None:
        if mode not in ("resize", "tile"):
            raise ConfigError(f"mode must be resize or tile, got {mode!r}")
        if not 0.0 <= tile_overlap < 1.0:
            raise ConfigError(f"tile overlap must be in [0, 1), got {tile_overlap}")
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}")
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"threshold must be in (0, 1), got {threshold}")
        self.backend = backend
        self.mode = mode
        self.tile_overlap = tile_overlap
        self.batch_size = batch_size
        self.threshold = threshold
        self.image_size = int(backend.image_size)
        self._resize = build_transform(self.image_size, augment=False)

    # -- construction from files -------------------------------------------------------------

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str] | None,
        base: str | None = None,
        device: str = "cpu",
        threads: int | None = None,
        allow_random_base: bool = False,
        **kwargs: Any,
    ) -> Predictor:
        """A checkpoint folder (CrackSAM delta + ``base``, a full export, or a student), an
        ``.onnx`` file or an OpenVINO ``.xml``; ``None`` is the default model bundled with the package."""
        if path is None:
            from cracksam.models.default import default_model_path

            path = default_model_path()
        from cracksam.deployment.backends import OnnxRuntimeBackend, OpenVINOBackend, TorchBackend, open_backend

        p = Path(path)
        gpu = device.lower().startswith(("cuda", "gpu"))
        if p.is_dir() or p.suffix == ".safetensors" or p.name == "config.json":
            from cracksam.models.io import load_model

            model = load_model(p, base_checkpoint=base, map_location=device, allow_random_base=allow_random_base)
            backend: Backend = TorchBackend(model, device=device, threads=threads)
        elif p.suffix.lower() == ".onnx":
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if gpu else None
            backend = OnnxRuntimeBackend(p, threads=threads, providers=providers)
        elif p.suffix.lower() == ".xml":
            backend = OpenVINOBackend(p, device="GPU" if gpu else "CPU", threads=threads)
        else:
            backend = open_backend(p)  # raises a clear error naming the file
        return cls(backend, **kwargs)

    # -- inference --------------------------------------------------------------------------

    def _run_batches(self, inputs: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
        """Uint8 (S, S, 3) network inputs -> their (2, S, S) logits, ``batch_size`` at a time."""
        for i in range(0, len(inputs), self.batch_size):
            chunk = np.stack(inputs[i : i + self.batch_size]).astype(np.float32).transpose(0, 3, 1, 2)
            logits = np.asarray(self.backend.run(np.ascontiguousarray(chunk)), dtype=np.float32)
            if logits.ndim != 4 or logits.shape[1] != 2:
                raise ValueError(f"backend returned logits of shape {logits.shape}, expected (B, 2, S, S)")
            yield from logits

    def _resize_logits(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        inputs = [self._resize(image=img)["image"] for img in images]
        out = []
        for img, logits in zip(images, self._run_batches(inputs), strict=True):
            h, w = img.shape[:2]
            # Bilinear on logits, as the model's own upsampling.
            out.append(np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR) for c in logits]))
        return out

    def _tile_logits(self, image: np.ndarray) -> np.ndarray:
        s = self.image_size
        h, w = image.shape[:2]
        # Images smaller than a tile are padded (replicated border) and cropped back afterwards.
        ph, pw = max(s - h, 0), max(s - w, 0)
        padded = cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_REPLICATE) if ph or pw else image
        hp, wp = padded.shape[:2]
        stride = max(1, int(round(s * (1.0 - self.tile_overlap))))
        origins = [(y, x) for y in tile_origins(hp, s, stride) for x in tile_origins(wp, s, stride)]
        weight = _hann_weight(s)
        acc = np.zeros((2, hp, wp), np.float32)
        wsum = np.zeros((hp, wp), np.float32)
        tiles = [padded[y : y + s, x : x + s] for y, x in origins]
        for (y, x), logits in zip(origins, self._run_batches(tiles), strict=True):
            acc[:, y : y + s, x : x + s] += logits * weight
            wsum[y : y + s, x : x + s] += weight
        return (acc / wsum)[:, :h, :w]

    def logits(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """(2, H, W) float32 logits per image at its original size."""
        for img in images:
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or min(img.shape[:2]) < 1:
                raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {img.dtype} {img.shape}")
        if self.mode == "resize":
            return self._resize_logits(images)
        return [self._tile_logits(img) for img in images]

    def predict(self, images: Sequence[np.ndarray]) -> list[Prediction]:
        return [Prediction(_softmax_crack(lg), lg[1].astype(np.float32)) for lg in self.logits(images)]

    def predict_one(self, image: np.ndarray) -> Prediction:
        return self.predict([image])[0]

    def describe(self) -> dict[str, Any]:
        """A small model card for logs, reports and the HTTP service."""
        card = {
            "runtime": self.backend.name,
            "precision": self.backend.precision,
            "image_size": self.image_size,
            "mode": self.mode,
            "threshold": self.threshold,
        }
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
