"""Resumable training checkpoints: one safe reader
(:func:`~cracksam.models.run_checkpoint.load_checkpoint_file`), atomic writes keeping the previous one, saves
only at optimiser-step boundaries, and Ctrl-C turned into a clean stop at the next boundary.

Why not Lightning's defaults: ``ModelCheckpoint`` keeps one ``last.ckpt`` written in place (a kill
during the write loses the run), and on Ctrl-C Lightning stops wherever the batch is and exits 1;
a checkpoint written then holds the loop state of a half-done batch, so the resumed run's epochs
shift by one step.  Here a checkpoint is only ever written in ``on_train_batch_end`` right after an
optimiser step (or at the end of training), which is the state Lightning's loops restart from.
"""

from __future__ import annotations

import os
import signal
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from cracksam._files import sha256_file
from cracksam.errors import CheckpointError, CrackSAMWarning
from cracksam.models.run_checkpoint import checksum_file, load_checkpoint_file

LAST, PREVIOUS = "last.ckpt", "previous.ckpt"


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint reader/writer with :func:`load_checkpoint_file` for every read and an
    atomic write: to a temporary file, flushed to disk, then renamed over the target.  The
    ``last.ckpt`` being replaced is kept as ``previous.ckpt`` (one damaged file does not lose the run)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp_sum = path.with_name(f".{path.name}.sha256.tmp{os.getpid()}")
        sums = checksum_file(path)
        try:
            with open(tmp, "wb") as fh:
                torch.save(checkpoint, fh)
                fh.flush()
                os.fsync(fh.fileno())
            # The checksum lets a resume tell a byte flipped on disk from a good checkpoint
            # (load_checkpoint_file verifies it; a damaged last.ckpt falls back to previous.ckpt).
            tmp_sum.write_text(f"{sha256_file(tmp)}  {path.name}\n")
            if path.name == LAST and path.exists():
                previous = path.with_name(PREVIOUS)
                os.replace(path, previous)
                if sums.exists():
                    os.replace(sums, checksum_file(previous))
                else:  # a stale sidecar would call the rotated checkpoint damaged
                    checksum_file(previous).unlink(missing_ok=True)
            os.replace(tmp, path)
            os.replace(tmp_sum, sums)
        finally:
            tmp.unlink(missing_ok=True)
            tmp_sum.unlink(missing_ok=True)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint_file(path, map_location=map_location or "cpu")


def checkpoint_step(checkpoint: dict[str, Any]) -> int:
    return int(checkpoint.get("global_step", -1))


def choose_resume_checkpoint(ckpt_dir: Path, move_damaged: bool = True) -> Path:
    """The checkpoint a resumed run starts from: ``last.ckpt``, or ``previous.ckpt`` when the latest
    is damaged or missing (one warning line says so).  A damaged latest is renamed
    ``last.ckpt.damaged`` so the next save does not rotate it over the good previous one."""
    last, previous = ckpt_dir / LAST, ckpt_dir / PREVIOUS
    try:
        load_checkpoint_file(last)
        return last
    except CheckpointError as exc:
        if not previous.is_file():
            raise
        problem = exc
    try:
        step = checkpoint_step(load_checkpoint_file(previous))
    except CheckpointError as exc:
        raise CheckpointError(f"{problem}; the previous checkpoint is no better: {exc}") from None
    if move_damaged and last.exists():
        os.replace(last, last.with_name(LAST + ".damaged"))
        if checksum_file(last).exists():
            os.replace(checksum_file(last), checksum_file(last.with_name(LAST + ".damaged")))
    warnings.warn(f"{problem}; resuming from {previous} (step {step}) instead", CrackSAMWarning, stacklevel=2)
    return previous


class TrainingInterrupted(Exception):  # noqa: N818 - a stop the user asked for, not an error
    """Raised at a step boundary after Ctrl-C, once the checkpoint is written."""

    def __init__(self, step: int, checkpoint: Path) -> None:
        super().__init__(f"interrupted at step {step}; checkpoint {checkpoint}")
        self.step, self.checkpoint = step, checkpoint


class InterruptFlag:
    """Ctrl-C (SIGINT) sets a flag instead of raising inside a batch; a second Ctrl-C interrupts at
    once (KeyboardInterrupt, nothing saved beyond the last checkpoint)."""

    def __init__(self) -> None:
        self.requested = False

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    @contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self._handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


class StepCheckpoint(L.Callback):
    """Writes ``last.ckpt`` every ``every`` optimiser steps and at the end of training, and stops at
    the next step boundary when ``interrupt`` was requested (after saving).

    When the step is also a validation step, the save (and the stop) waits for the end of that
    validation: a checkpoint written before it would resume past a validation that never ran
    (Lightning does not repeat it), so best/ could differ from the uninterrupted run's.  Place
    this callback after the best-model callback, so the checkpoint holds its updated record."""

    def __init__(self, path: Path, every: int, interrupt: InterruptFlag | None = None, max_steps: int = -1) -> None:
        self.path, self.every, self.interrupt, self.max_steps = Path(path), int(every), interrupt, max_steps
        self._saved_step = -1
        self._pending: tuple[bool, bool] | None = None  # (save, stop) after this step's validation
        self.trained_batches = 0  # in this process (a start that trained nothing leaves no log part)

    def _save(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)
        self._saved_step = trainer.global_step

    def _act(self, trainer: L.Trainer, save: bool, stop: bool) -> None:
        if save:
            self._save(trainer)
        if stop:
            raise TrainingInterrupted(trainer.global_step, self.path)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.trained_batches += 1
        step = trainer.global_step
        # global_step moves only on an optimiser step: an unchanged step is mid-accumulation.
        boundary = step > 0 and not trainer.fit_loop._should_accumulate()
        stop = self.interrupt is not None and self.interrupt.requested
        if trainer.world_size > 1:  # every rank must stop at the same step (collectives would hang)
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if boundary and 0 < self.max_steps <= step:
            # Ask Lightning to stop here: it then validates this step too (see fit), so every run
            # ends with a validation and a best/ model.
            trainer.should_stop = True
        if not boundary:
            return
        save = step != self._saved_step and (step % self.every == 0 or stop)
        if not (save or stop):
            return
        epoch_loop, fetcher = trainer.fit_loop.epoch_loop, trainer.fit_loop._data_fetcher
        assert fetcher is not None  # set while training
        skip = getattr(epoch_loop, "_skip_next_val", False)  # Lightning >= 2.5: a resume skips a done validation
        if not skip and epoch_loop._should_check_val_fx(fetcher):  # Lightning's own decision
            self._pending = (save, stop)
            return
        self._act(trainer, save, stop)

    def on_validation_end(self, trainer: L.Trainer, pl_module) -> None:
        if self._pending is not None and not trainer.sanity_checking:
            save, stop = self._pending
            self._pending = None
            self._act(trainer, save, stop)

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        if trainer.global_step > 0 and trainer.global_step != self._saved_step:
            self._save(trainer)


class RngState(L.Callback):
    """Carries the global torch random state through checkpoints (dropout and any other global
    randomness continue where they stopped instead of restarting from the seed)."""

    def state_dict(self) -> dict[str, Any]:
        return {"torch": torch.get_rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "torch" in state_dict:
            torch.set_rng_state(state_dict["torch"])
