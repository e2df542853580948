"""What a checkpoint folder of ours holds and how its tensors are written: the file names and
format version both the saving side (:mod:`cracksam.models.saving`) and the loading side
(:mod:`cracksam.models.io`) use, and the atomic safetensors write that the weights and the QAT
quantisers (:mod:`cracksam.models.quantizer_files`) share.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import save_file

from cracksam.config import default_file_mode
from cracksam.models.integrity import canonicalize_safetensors

FORMAT = "cracksam"
FORMAT_VERSION = 2  # 2: config_sha256 and trained_image_size; weights_sha256 required
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"
Kind = Literal["delta", "full"]


def atomic_save_file(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Write ``tensors`` to ``path`` aside and rename it into place, so a crash leaves the previous
    file readable."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        canonicalize_safetensors(Path(tmp))  # identical weights -> identical bytes -> identical model id
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
