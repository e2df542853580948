"""The default model shipped inside the package, used when a command is given no ``--model``.

It lives in ``cracksam/weights/default/`` (a checkpoint folder in our own format: config.json +
weights.safetensors) and is installed with the package, so one command segments cracks offline.
How it was trained and how good it is: ``MODEL_CARD.md`` at the repository root.
"""

from __future__ import annotations

import os
from pathlib import Path

from cracksam.errors import CheckpointError

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "weights" / "default"
ENV_VAR = "CRACKSAM_DEFAULT_MODEL"  # points the default elsewhere (a folder, .onnx or .xml)


def default_model_path() -> Path:
    """The model to use when none is named: ``$CRACKSAM_DEFAULT_MODEL`` or the bundled one."""
    override = os.environ.get(ENV_VAR)
    if override:
        path = Path(override)
        if not path.exists():
            raise CheckpointError(f"{ENV_VAR}={override}: no such file or folder")
        return path
    if not (DEFAULT_MODEL_DIR / "config.json").is_file() or not (DEFAULT_MODEL_DIR / "weights.safetensors").is_file():
        raise CheckpointError(
            f"no default model is bundled with this installation ({DEFAULT_MODEL_DIR} is missing); "
            "name one with --model"
        )
    return DEFAULT_MODEL_DIR
