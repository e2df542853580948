"""Teacher logits for distillation, computed once and cached on disk.

Running a ViT teacher every epoch would dominate a CPU distillation run, so each training image's
teacher logits are computed once, on the augmentation-free input (the image resized to the
teacher's S x S), and stored as float16 ``.npy`` files.  The key of a file is a hash of the
image's path, size and modification time, the teacher's identity (weights checksum or file
hash) and its input size: a changed image or teacher never reuses a stale entry.

The dataset then applies the same geometric augmentation to image, mask and teacher logits
(:mod:`cracksam.data.transforms` ``additional_targets``), so the cached logits stay aligned.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cracksam._files import update_digest
from cracksam.config import atomic_write_bytes
from cracksam.data.folder import Sample
from cracksam.data.io import read_image
from cracksam.data.transforms import build_transform
from cracksam.errors import CheckpointError


def teacher_identity(path: str | os.PathLike[str]) -> str:
    """A short id that changes when the teacher's weights change."""
    p = Path(path)
    config = p / "config.json" if p.is_dir() else None
    if config is not None and config.is_file():
        try:
            meta = json.loads(config.read_text(encoding="utf-8"))
            if meta.get("weights_sha256"):
                return str(meta["weights_sha256"])[:16]
        except (OSError, json.JSONDecodeError):
            pass
    digest = hashlib.sha256()
    files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file())
    if p.suffix.lower() == ".xml":
        files.append(p.with_suffix(".bin"))
    for f in files:
        if f.is_file():
            update_digest(digest, f)
    return digest.hexdigest()[:16]


class TeacherCache:
    """Float16 teacher logits (2, S_t, S_t) per sample, in ``directory``."""

    def __init__(self, directory: str | os.PathLike[str], teacher_id: str, image_size: int) -> None:
        self.directory = Path(directory)
        self.teacher_id = teacher_id
        self.image_size = int(image_size)

    def key(self, sample: Sample) -> str:
        st = Path(sample.image).stat()
        text = f"{Path(sample.image).resolve()}|{st.st_size}|{st.st_mtime_ns}|{self.teacher_id}|{self.image_size}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def path(self, sample: Sample) -> Path:
        return self.directory / f"{self.key(sample)}.npy"

    def missing(self, samples: Sequence[Sample]) -> list[Sample]:
        return [s for s in samples if not self.path(s).is_file()]

    def load(self, sample: Sample) -> np.ndarray:
        path = self.path(sample)
        try:
            logits = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: unreadable teacher cache entry for {sample.image} ({exc}); "
                                  "delete the cache folder to rebuild it") from None
        if logits.shape != (2, self.image_size, self.image_size):
            raise CheckpointError(f"{path}: teacher logits of shape {logits.shape}, expected "
                                  f"(2, {self.image_size}, {self.image_size}); delete the cache folder")
        return logits

    def store(self, sample: Sample, logits: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, logits.astype(np.float16), allow_pickle=False)
        atomic_write_bytes(self.path(sample), buffer.getvalue())


def fill_cache(cache: TeacherCache, backend, samples: Sequence[Sample], batch_size: int = 4,
               progress: bool = True, stream=None) -> int:
    """Run the teacher on every sample not yet cached; returns how many were computed.

    Progress: a bar on a terminal (``progress``); elsewhere (a log file, a pipe, ``--no-progress``)
    a plain line about every tenth of the samples, since this pass can take as long as training.

    ``backend`` is any :class:`~cracksam.inference.predictor.Backend` (PyTorch, ONNX Runtime,
    OpenVINO), so an exported teacher can be used where it is faster.
    """
    from cracksam.progress_bar import progress_bar

    todo = cache.missing(samples)
    if not todo:
        return 0
    if int(backend.image_size) != cache.image_size:
        raise CheckpointError(f"teacher input size {backend.image_size} != cache size {cache.image_size}")
    resize = build_transform(cache.image_size, augment=False)
    out = stream or sys.stderr
    plain = not (progress and out.isatty())
    every = max(1, math.ceil(len(todo) / 10))
    if plain:
        print(f"teacher logits: {len(todo)} image(s) to compute", file=out, flush=True)
    start, done = time.perf_counter(), 0
    with progress_bar(enabled=not plain) as bar:
        task = bar.add_task("teacher logits", total=len(todo))
        for i in range(0, len(todo), batch_size):
            chunk = todo[i : i + batch_size]
            x = np.stack([resize(image=read_image(s.image))["image"] for s in chunk]).astype(np.float32)
            logits = np.asarray(backend.run(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), dtype=np.float32)
            for sample, lg in zip(chunk, logits, strict=True):
                cache.store(sample, lg)
            bar.advance(task, len(chunk))
            before, done = done, done + len(chunk)
            if plain and (done // every > before // every or done == len(todo)):
                rate = done / max(time.perf_counter() - start, 1e-9)
                print(f"teacher logits: {done}/{len(todo)} ({rate:.1f} images/s)", file=out, flush=True)
    return len(todo)
