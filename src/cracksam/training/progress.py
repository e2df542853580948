"""What a training run shows while it runs: a progress bar on a terminal, plain periodic lines
with ``--no-progress`` (or in a log file), and none of Lightning's tips and deprecation noise."""

from __future__ import annotations

import logging
import math
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar

PLAIN_LINES = 20  # --no-progress: about this many progress lines over a run


def format_lr(value: float) -> str:
    """A learning rate as it is written in configs (``4.00e-04``); ``.3f`` shows ``0.000``."""
    return f"{value:.2e}"


class CrackProgressBar(RichProgressBar):
    """Lightning's rich bar, with the learning rate in scientific notation and no version number."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        lr = items.get("lr")
        if isinstance(lr, (int, float)):
            items["lr"] = format_lr(float(lr))
        return items


class PlainProgress(L.Callback):
    """One plain line every ``every`` steps (and after each validation), for ``--no-progress``,
    pipes and log files where a live bar prints nothing until the end."""

    def __init__(self, max_steps: int, every: int | None = None, stream: TextIO | None = None) -> None:
        self.max_steps = max(1, max_steps)
        self.every = every or max(1, math.ceil(self.max_steps / PLAIN_LINES))
        self.stream = stream
        self._start = 0.0
        self._first_step = 0

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stderr, flush=True)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start, self._first_step = time.perf_counter(), trainer.global_step
        self._print(f"training: {self.max_steps} steps, a line every {self.every}")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step
        if not trainer.is_global_zero or (step % self.every and step != self.max_steps):
            return
        metrics = trainer.callback_metrics
        parts = [f"step {step}/{self.max_steps} ({100 * step / self.max_steps:.0f}%)"]
        if "train/loss" in metrics:
            parts.append(f"loss {float(metrics['train/loss']):.4f}")
        if "lr" in metrics:
            parts.append(f"lr {format_lr(float(metrics['lr']))}")
        done = step - self._first_step
        if done > 0:
            per_step = (time.perf_counter() - self._start) / done
            parts.append(f"{per_step:.2f} s/step, about {_duration(per_step * (self.max_steps - step))} left")
        self._print(", ".join(parts))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        iou = trainer.callback_metrics.get("val/iou")
        if iou is not None:
            self._print(f"validation at step {trainer.global_step}: IoU {float(iou):.4f}")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def progress_callback(config: Any, max_steps: int) -> L.Callback:
    """The bar on a terminal when progress is on; plain lines otherwise."""
    if config.progress and sys.stderr.isatty():
        return CrackProgressBar()
    return PlainProgress(max_steps)


# Lightning's chatter that says nothing about this run: marketing tips, hardware lines we print
# ourselves, and deprecation warnings from inside Lightning that a user cannot act on.
_QUIET_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                  "lightning.fabric.utilities.seed")
_QUIET_MESSAGES = (r".*LeafSpec.*", r".*does not have many workers.*", r".*litlogger.*", r".*litmodels.*",
                   r".*The number of training batches.*is smaller than the logging interval.*")


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's tips, info lines and internal deprecation warnings for one run."""
    saved = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for pattern in _QUIET_MESSAGES:
                warnings.filterwarnings("ignore", message=pattern)
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"lightning(\.|$)")
            try:
                from lightning.fabric.utilities.warnings import PossibleUserWarning

                warnings.filterwarnings("ignore", category=PossibleUserWarning)
            except ImportError:  # pragma: no cover - older Lightning
                pass
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
