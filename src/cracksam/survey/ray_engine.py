"""The survey job on Ray Data: tasks in, rows out, through a pool of actors that each open the model once.

* Embedded and local by default (``ray.init`` on this machine, stopped at the end), a running
  cluster with ``address`` (``auto``, ``ray://head:10001``, ``host:6379``); a process already
  connected to Ray (a notebook, the tests) is used as it is and left running.
* Ray started here ends with its driver even when the driver is SIGKILLed: a watcher
  (:mod:`cracksam.survey.ray_reaper`) ends the raylet's agents, which Ray itself leaves running
  for about a minute.
* Images are decoded in the workers; what travels are paths in and small rows out (masks are
  written by the workers, so ``--out`` must be a folder every node sees).
* Bounded in flight: each actor has at most ``MAX_IN_FLIGHT`` batches queued and the driver pulls
  results one batch ahead, so memory stays flat however long the job is.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from cracksam.errors import ConfigError, CrackSAMError
from cracksam.survey.manifest import INSTALL_HINT
from cracksam.survey.outputs import ImageOptions
from cracksam.survey.ray_reaper import Watcher
from cracksam.survey.rows import process_batch

if TYPE_CHECKING:
    from cracksam.inference.options import PredictOptions

MAX_IN_FLIGHT = 2  # batches queued per actor: one running, one ready


def import_ray() -> Any:
    """``ray`` with Ray Data, or the one-line error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (the part we use; a bare ``ray`` install lacks its dependencies)
    except ImportError:
        raise ConfigError(f"--engine ray needs Ray (ray[data]); install it with: {INSTALL_HINT}") from None
    return ray


class SurveyWorker:
    """A Ray actor: opens the predictor once, then runs batches of tasks (JSON strings) to rows."""

    def __init__(self, spec: PredictOptions, options: ImageOptions) -> None:
        from cracksam.deployment.runtime_cache import select_backend
        from cracksam.inference.predictor import open_predictor

        self.predictor = open_predictor(spec, select_backend)
        self.options = options

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        tasks = [json.loads(t) for t in batch["task"]]
        rows = process_batch(self.predictor, tasks, self.options)
        return {"row": np.array([json.dumps(r) for r in rows], dtype=object)}


def _start(ray: Any, address: str | None, cpus_needed: int) -> tuple[bool, Watcher | None]:
    """Connect (or start local Ray); True when this call started it (and so must stop it), and the
    watcher that ends local Ray if this process dies (None: connected to a cluster, or not Linux)."""
    if ray.is_initialized():
        return False, None
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                              "log_to_driver": False}
    if address is None:
        import os

        from cracksam.threads import cpu_cores

        # Ray runs its workers at nice +15 by default (for a responsive driver); here they do the
        # job's work, and measured on a busy machine a niced worker took 7x longer per image.
        os.environ.setdefault("RAY_worker_niceness", "0")

        # Enough logical CPUs for the pool asked for, or its actors would wait for ever.
        kwargs["num_cpus"] = max(cpu_cores(), cpus_needed)
    watcher = Watcher.start() if address is None else None
    try:
        ray.init(address=address, **kwargs)
    except BaseException as exc:
        if watcher is not None:
            watcher.stop(kill=True)  # whatever a failed start left running
        if not isinstance(exc, (ConnectionError, ValueError, RuntimeError)):
            raise
        where = address or "a local Ray instance"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--address {where}: cannot connect to Ray ({first})") from None
    if watcher is not None:
        watcher.unmark()
    return True, watcher


def ray_batches(
    job: Any,
    tasks: list[dict[str, Any]],
    *,
    address: str | None = None,
    workers: int | None = None,
    threads: int = 1,
    gpus_per_worker: float = 0.0,
) -> Iterator[list[dict[str, Any]]]:
    """Rows of ``tasks`` as they come back from ``workers`` actors of ``threads`` CPUs each (None:
    the cluster's CPUs / ``threads``)."""
    ray = import_ray()
    started, watcher = _start(ray, address, (workers or 1) * threads)
    try:
        if workers is None:  # a cluster: as many workers as its CPUs allow
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the CLI draws its own; Ray's would interleave with it
        ctx.print_on_execution_start = False
        ctx.enable_auto_log_stats = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        blocks = max(1, min(math.ceil(len(tasks) / job.batch_size), 4096))
        ds = ray.data.from_items([{"task": json.dumps(t)} for t in tasks], override_num_blocks=blocks)
        # A fixed pool where we chose the CPUs; on a cluster, start with what is free and grow.
        pool = (ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=MAX_IN_FLIGHT)
                if started and address is None else
                ray.data.ActorPoolStrategy(min_size=1, max_size=workers, max_tasks_in_flight_per_actor=MAX_IN_FLIGHT))
        ds = ds.map_batches(
            SurveyWorker,
            fn_constructor_kwargs={"spec": job.predictor_options, "options": job.options},
            batch_size=job.batch_size,
            compute=pool,
            num_cpus=threads,
            num_gpus=gpus_per_worker or None,
            batch_format="numpy",
        )
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1):
                yield [json.loads(r) for r in batch["row"]]
        except ray.exceptions.RayTaskError as exc:  # a user error inside a worker: one line, as locally
            cause = getattr(exc, "cause", None)
            if isinstance(cause, CrackSAMError):
                raise cause from None
            raise
    finally:
        try:
            if started:
                ray.shutdown()
        finally:
            if watcher is not None:
                watcher.stop()
