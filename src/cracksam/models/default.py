"""The default model shipped inside the package, used when a command is given no ``--model``, and
the resolution of what a user names as a model (``default``, a training run folder).

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


DEFAULT_NAME = "default"
BEST_DIR = "best"  # where `cracksam train` keeps a run's best model (see cracksam.training.trainer)


def resolve_model_path(path: str | os.PathLike[str] | None) -> Path:
    """Where the model named by a user lies.

    ``None`` or ``"default"`` is :func:`default_model_path` (a file or folder literally named
    ``default`` wins, as ``vit_b`` does for base checkpoints).  A training run folder (no
    ``config.json`` of its own, a ``best/`` model inside) is its ``best/``, so ``--model runs/x``
    works as ``train`` printed it; a resumable ``.ckpt`` is its weights as a model folder
    (:func:`~cracksam.models.run_checkpoint.model_folder`).  Anything else is returned as given,
    for the loaders to judge."""
    if path is None or (str(path) == DEFAULT_NAME and not Path(path).exists()):
        return default_model_path()
    p = Path(path)
    if p.suffix == ".ckpt" and p.is_file():
        from cracksam.models.run_checkpoint import model_folder

        return model_folder(p)  # a resumable training checkpoint: its current weights
    if p.is_dir() and not (p / "config.json").exists():
        if (p / BEST_DIR / "config.json").is_file():
            return p / BEST_DIR
        if (p / "checkpoints" / "last.ckpt").is_file():
            raise CheckpointError(
                f"{p}: this training run has no best/ model yet (it never validated); resume it with "
                f"`cracksam train --resume --out {p}` so it finishes and writes {p / BEST_DIR}, or give "
                f"{p / 'checkpoints' / 'last.ckpt'} to use its latest weights"
            )
    return p
