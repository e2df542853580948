"""Several inference requests in flight at once (throughput mode).

On a CPU one request rarely keeps every core busy (pre- and post-processing, memory-bound layers,
small batches), so a folder of photos or the tiles of one big photo go faster when a second
request computes while the first finishes.  :func:`run_many` gives a backend up to ``in_flight``
batches at once: OpenVINO through its asynchronous infer requests
(:meth:`~cracksam.inference.backend_openvino.OpenVINOBackend.run_many`), ONNX Runtime and
PyTorch from a small thread pool (both release the GIL while they compute and are safe to call
from several threads).  The result is the list of logits in the order of ``batches``, equal to
calling ``run`` on each -- only the scheduling differs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from cracksam.errors import ConfigError


def check_in_flight(in_flight: int) -> int:
    if isinstance(in_flight, bool) or not isinstance(in_flight, int) or in_flight < 1:
        raise ConfigError(f"requests in flight must be an integer >= 1, got {in_flight!r}")
    return in_flight


def run_threaded(fn: Callable[[np.ndarray], np.ndarray], batches: Sequence[np.ndarray],
                 in_flight: int) -> list[np.ndarray]:
    """``[fn(b) for b in batches]`` with up to ``in_flight`` calls running at once, in order."""
    check_in_flight(in_flight)
    if in_flight == 1 or len(batches) < 2:
        return [fn(b) for b in batches]
    with ThreadPoolExecutor(max_workers=min(in_flight, len(batches)), thread_name_prefix="cracksam-run") as pool:
        return list(pool.map(fn, batches))


def run_many(backend: Any, batches: Sequence[np.ndarray], in_flight: int = 2) -> list[np.ndarray]:
    """Logits of each batch through ``backend``, ``in_flight`` requests at a time (its own
    ``run_many`` where it has one, else a thread pool over ``run``)."""
    check_in_flight(in_flight)
    own = getattr(backend, "run_many", None)
    if own is not None:
        return list(own(batches, in_flight))
    return run_threaded(backend.run, batches, in_flight)


__all__ = ["check_in_flight", "run_many", "run_threaded"]
