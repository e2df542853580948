"""``cracksam`` CLI with test hooks, for tests that train in a subprocess (test_training_processes.py).

Run as a script (DDP re-launches ``sys.argv`` for its other ranks, so they get the hooks too):

* ``CRACKSAM_TEST_SIGNAL_AT=STEP:SIGNAME``: rank 0 sends itself the signal when step ``STEP + 1``
  starts (SIGKILL: no chance to save; SIGINT: what Ctrl-C sends);
* ``CRACKSAM_TEST_DUMP_WEIGHTS=DIR``: each rank writes its final weights to ``DIR/rank<R>.pt``.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import lightning as L
import torch

import cracksam.training.trainer as trainer_module
from cracksam.cli.main import main


class _SignalAt(L.Callback):
    def __init__(self, spec: str) -> None:
        step, name = spec.split(":")
        self.step, self.signal, self.sent = int(step), getattr(signal, name), False

    def on_train_batch_start(self, trainer, *args) -> None:
        if trainer.global_step == self.step and trainer.is_global_zero and not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signal)


class _DumpWeights(L.Callback):
    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)

    def on_train_end(self, trainer, pl_module) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}
        torch.save(state, self.directory / f"rank{trainer.global_rank}.pt")


_fit = trainer_module.fit


def _fit_with_hooks(config, resume=False, extra_callbacks=None, **kwargs):
    hooks = list(extra_callbacks or [])
    if os.environ.get("CRACKSAM_TEST_SIGNAL_AT"):
        hooks.append(_SignalAt(os.environ["CRACKSAM_TEST_SIGNAL_AT"]))
    if os.environ.get("CRACKSAM_TEST_DUMP_WEIGHTS"):
        hooks.append(_DumpWeights(os.environ["CRACKSAM_TEST_DUMP_WEIGHTS"]))
    return _fit(config, resume=resume, extra_callbacks=hooks, **kwargs)


trainer_module.fit = _fit_with_hooks

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
